"""``dossier export``: the ledger as an event log for process-mining tools (XES, CSV).

One case per dossier, with its case attributes (procedure, agency, channel,
appointment, due instant and on-time class from ``projections.state.view``),
and one event per ledger event (``concept:name``, ``time:timestamp``,
``org:resource``, ``org:role``, ``org:group``, and each data field as
``dossier:<field>``). Pseudonyms only: the sealed applicant block is never
opened; a case carries the applicant's pseudonym.

The log is read in ledger order and regrouped by dossier through a sort on
disk, so memory holds one sorted run and one dossier at a time.
:func:`ledger_mapping` is the mapping that imports an export back (``dossier
import``), with the same dossiers and verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from interchange import xes
from interchange.csvlog import csv_writer
from ledger.application import DossierLedger
from ledger.domain.events import EVENT_TYPES, Recorded
from ledger.domain.rules import RuleBook
from ledger.dossier_order import RUN_BYTES, grouped
from projections.state import evolve_into, view

PAGE = 5000
CASE_FIELDS = (
    ("procedure", "string"),
    ("procedure_version", "string"),
    ("agency", "string"),
    ("channel", "string"),
    ("online_level", "string"),
    ("lead_agency", "string"),
    ("rule_set", "string"),
    ("allowance", "string"),
    ("received", "date"),
    ("appointment", "date"),
    ("due", "date"),
    ("ended", "date"),
    ("on_time", "string"),
    ("status", "string"),
    ("applicant", "string"),
    ("documents", "string"),
    ("fee", None),
)
DATA_FIELDS = tuple(
    sorted({f for t, spec in EVENT_TYPES.items() if t != "DossierReceived" for f in spec})
)
EVENT_COLUMNS = (
    "concept:name",
    "time:timestamp",
    "org:resource",
    "org:role",
    "org:group",
    "lifecycle:transition",
    "identity:id",
    "dossier:type",
    "dossier:recorded_at",
    *(f"dossier:{f}" for f in DATA_FIELDS),
)
CSV_COLUMNS = (
    "case:concept:name",
    *(f"case:{name}" for name, _ in CASE_FIELDS),
    *EVENT_COLUMNS,
)


def _text(value: Any) -> Any:
    """A data value as one attribute value (lists joined, durations as '3 working_days')."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        amount = value.get("value")
        return value["unit"] if amount is None else f"{amount} {value['unit']}"
    return value


def watermark(ledger: DossierLedger) -> datetime | None:
    """The latest business time in the log: "now" of an export unless one is given."""
    latest: datetime | None = None
    after = 0
    while True:
        page = ledger.read(after, PAGE)
        if not page:
            return latest
        for rec in page:
            at = datetime.fromisoformat(rec.envelope["occurred_at"])
            if latest is None or at > latest:
                latest = at
        after = page[-1].position


def dossiers(
    ledger: DossierLedger, page: int = PAGE, run_bytes: int = RUN_BYTES
) -> Iterator[list[Recorded]]:
    """Each dossier's events, in chain order, one dossier at a time (by dossier id).

    The log is read once in ledger order and regrouped by an external sort
    (:mod:`ledger.dossier_order`): reading through the (dossier, version) key
    instead seeks for every event, and waits on the disk once the log
    outgrows the page cache.
    """
    decode = ledger.decode
    for rows in grouped(ledger.stored(0, page), run_bytes=run_bytes):
        yield [Recorded(position, version, decode(state)) for _, version, position, state in rows]


def case_of(
    events: list[Recorded], rules: RuleBook, now: datetime
) -> tuple[list[tuple[str, Any, str | None]], list[list[tuple[str, Any, str | None]]]]:
    """One dossier as (case attributes, events' attributes), for XES and CSV alike."""
    facts: dict[str, Any] = {}
    for rec in events:
        evolve_into(facts, rec.position, rec.envelope)
    v = view(facts, rules, now)
    receipt = events[0].envelope["data"]
    values = {
        "procedure": v["procedure_code"],
        "procedure_version": v["procedure_version"],
        "agency": v["agency"],
        "channel": v["channel"],
        "online_level": receipt.get("online_level"),
        "lead_agency": receipt.get("lead_agency"),
        "rule_set": v["rule_set"],
        "allowance": _text(v["allowance"]),
        "received": v["received_at"],
        "appointment": v["appointment_at"],
        "due": v["original_due_at"],
        "ended": v["ended_at"],
        "on_time": v["on_time"],
        "status": v["status"],
        "applicant": receipt["applicant"].get("pseudonym"),
        "documents": _text(receipt.get("documents")) or None,
        "fee": receipt.get("fee"),
    }
    attrs: list[tuple[str, Any, str | None]] = [("concept:name", v["dossier_id"], "string")]
    attrs += [(k, values[k], t) for k, t in CASE_FIELDS if values[k] is not None]
    out = []
    for rec in events:
        env = rec.envelope
        data = env["data"]
        actor = env["actor"]
        activity = data["step"] if env["type"] == "StepCompleted" else env["type"]
        event: list[tuple[str, Any, str | None]] = [
            ("concept:name", activity, "string"),
            ("time:timestamp", env["occurred_at"], "date"),
            ("org:resource", actor["id"], "string"),
            ("org:role", actor["role"], "string"),
            ("org:group", actor["agency"], "string"),
            ("lifecycle:transition", "complete", "string"),
            ("identity:id", env["event_id"], "id"),
            ("dossier:type", env["type"], "string"),
            ("dossier:recorded_at", env["recorded_at"], "date"),
        ]
        if env["type"] != "DossierReceived":  # its data are the case's attributes
            for name in sorted(data):
                value = data[name]
                if value is not None:
                    kind = "date" if name == "new_appointment_at" else None
                    event.append((f"dossier:{name}", _text(value), kind))
        out.append(event)
    return attrs, out


def export_log(
    ledger: DossierLedger,
    rules: RuleBook,
    *,
    xes_path: Path | None = None,
    csv_path: Path | None = None,
    since: date | None = None,
    until: date | None = None,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the dossiers received from ``since`` to ``until`` (local receipt days,
    inclusive) as XES and/or CSV; "now" for open dossiers' verdicts defaults to
    the log's latest business time. Returns counts."""
    if now is None:
        now = watermark(ledger)
    outs: list[IO[str]] = []
    try:
        xout = _open(xes_path, outs) if xes_path else None
        cout = _open(csv_path, outs) if csv_path else None
        if xout is not None:
            xout.write(xes.HEADER)
        writer = csv_writer(cout, list(CSV_COLUMNS)) if cout is not None else None
        cases = events = 0
        for dossier in dossiers(ledger):
            if progress is not None:
                progress(len(dossier))
            received_day = date.fromisoformat(dossier[0].envelope["occurred_at"][:10])
            if (since and received_day < since) or (until and received_day > until):
                continue
            attrs, evs = case_of(dossier, rules, now)  # type: ignore[arg-type]
            cases += 1
            events += len(evs)
            if xout is not None:
                xes.write_trace(xout, attrs, evs)
            if writer is not None:
                case = {f"case:{k}": _csv(v) for k, v, _ in attrs}
                for ev in evs:
                    row = case | {k: _csv(v) for k, v, _ in ev}
                    writer.writerow([row.get(c, "") for c in CSV_COLUMNS])
        if xout is not None:
            xout.write(xes.FOOTER)
    finally:
        for f in outs:
            f.close()
    return {
        "cases": cases,
        "events": events,
        "now": now.isoformat() if now else None,
        "xes": str(xes_path) if xes_path else None,
        "csv": str(csv_path) if csv_path else None,
    }


def _csv(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _open(path: Path, outs: list[IO[str]]) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        import gzip

        f: IO[str] = gzip.open(path, "wt", encoding="utf-8", newline="")  # type: ignore[assignment]
    else:
        f = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    outs.append(f)
    return f


def ledger_mapping(fmt: str = "xes", timezone: str = "Asia/Ho_Chi_Minh") -> str:
    """The mapping that imports this module's XES or CSV export back into a ledger."""
    case = "case:" if fmt == "csv" else ""
    dossier = {
        "id": "concept:name",
        "received_at": "received",
        "appointment_at": "appointment",
        "procedure_code": "procedure",
        "procedure_version": "procedure_version",
        "agency": "agency",
        "channel": "channel",
        "online_level": "online_level",
        "lead_agency": "lead_agency",
        "processing_time": "allowance",
        "rule_set": "rule_set",
        "fee": "fee",
        "applicant_id": "applicant",
    }
    lines = [
        "[source]",
        f'format = "{fmt}"',
        f'timezone = "{timezone}"',
        *(['case = "case:concept:name"'] if fmt == "csv" else []),
        "",
        "[dossier]",
        *(f'{k} = {{ attr = "{case}{v}" }}' for k, v in dossier.items()),
        f'documents = {{ attr = "{case}documents", split = "," }}',
        "",
        "[event]",
        'at = { attr = "time:timestamp" }',
        'actor = { attr = "org:resource", default = "unknown" }',
        'role = { attr = "org:role" }',
        'agency = { attr = "org:group" }',
        'step = { attr = "concept:name" }',
        'type = { attr = "dossier:type" }',
        'recorded_at = { attr = "dossier:recorded_at" }',
        "",
        "[event.data]",
        *(
            f'{f} = {{ attr = "dossier:{f}"' + (', split = ","' if f == "documents" else "") + " }"
            for f in DATA_FIELDS
        ),
        "",
    ]
    return "\n".join(lines)
