"""One case of a log -> one dossier's envelopes, through a mapping (pure).

Real logs are messy, so a case is put in order before it is judged: exact
duplicate events are dropped, events are sorted by time (file order breaks
ties), the receipt comes first, timestamps without an offset take the
mapping's time zone. Then the envelopes are checked exactly as the ledger will
check them (``validate``, the lifecycle ``check``, the rule set in force), so a
case is imported whole or reported whole with the reason, never half-applied.

Event ids are UUID5 of the dossier id and the source event's attributes:
importing the same log twice gives the same ids, so it adds nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha1
from typing import Any

import orjson

from interchange.mapping import MISSING, MapError, Mapping
from interchange.values import Getter, Plan
from ledger.domain.events import EVENT_TYPES, SCHEMA_VERSION, EnvelopeError, validate
from ledger.domain.lifecycle import EMPTY, ImpossibleEvent, check, evolve
from ledger.domain.rules import NoRuleSetForDossier, NoRuleSetInForce, RuleBook

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://dossier-ledger.invalid/import")
IMPORT_ACTOR = "import"
"""Actor of the events the importer adds (a receipt or result the log gives only as
case attributes): the ``system`` that imported them, not an official."""


@dataclass
class SourceEvent:
    attrs: dict[str, Any]
    line: int | None = None


@dataclass
class SourceCase:
    """A case as read from the log: its attributes and its events, in file order."""

    attrs: dict[str, Any]
    events: list[SourceEvent] = field(default_factory=list)
    index: int = 0  # 1-based trace number (XES) or case number (CSV)
    line: int | None = None  # first line of the case (CSV)

    @property
    def name(self) -> str | None:
        value = self.attrs.get("concept:name")
        return None if value is None else str(value)


class LogError(ValueError):
    """The log itself cannot be read (not XML, no case column...); names file and line."""


class CaseRejected(ValueError):
    """A case that cannot be imported; ``line`` is the CSV line at fault, if any."""

    def __init__(self, reason: str, line: int | None = None, dossier_id: str | None = None):
        super().__init__(reason)
        self.reason, self.line, self.dossier_id = reason, line, dossier_id


@dataclass
class MappedCase:
    dossier_id: str
    envelopes: list[dict[str, Any]]
    lines: list[int | None]  # per envelope: the CSV line of its source event
    duplicate_rows: int = 0


def _canonical(attrs: dict[str, Any]) -> bytes:
    return orjson.dumps(attrs, option=orjson.OPT_SORT_KEYS, default=str)


_NS = NAMESPACE.bytes


def event_id(dossier_id: str, *parts: bytes | str) -> str:
    """A deterministic event id (``uuid.uuid5(NAMESPACE, ...)``): the same log gives the
    same ids. Written out, as the uuid module's objects cost more than the hash."""
    name = b"\x1f".join(
        [dossier_id.encode(), *(p if isinstance(p, bytes) else p.encode() for p in parts)]
    )
    b = bytearray(sha1(_NS + name).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --- one case -----------------------------------------------------------------------


@dataclass
class _Event:
    at: datetime
    at_text: str
    order: tuple[int, int]
    etype: str
    actor: dict[str, str]
    step: str
    data: dict[str, Any]
    recorded_at: str | None
    event_id: str
    line: int | None
    attrs: dict[str, Any]
    rule_data: list[tuple[str, Getter]]


def map_case(case: SourceCase, mapping: Mapping, rules: RuleBook) -> MappedCase:
    """The envelopes of one case, checked as the ledger will; raises CaseRejected."""
    plan = Plan.of(mapping)
    d: dict[str, Any] = {}
    try:
        for name, get in plan.dossier:
            d[name] = get(case.attrs)
    except MapError as e:
        raise CaseRejected(str(e), case.line, d.get("id")) from None
    did = d.get("id", MISSING)
    if did is MISSING:
        raise CaseRejected(f"[dossier].id: no {mapping.dossier['id'].attr or 'id'}", case.line)
    for name in ("procedure_code", "procedure_version", "agency", "channel", "processing_time"):
        if d[name] is MISSING:
            spec = mapping.dossier[name]
            raise CaseRejected(f"[dossier].{name}: no case attribute {spec.attr!r}", case.line, did)

    events, duplicates = _events(case, mapping, plan, did, d["agency"])
    receipts = [e for e in events if e.etype == "DossierReceived"]
    if len(receipts) > 1:
        raise CaseRejected(
            f"{len(receipts)} events map to DossierReceived; a dossier is received once",
            receipts[1].line,
            did,
        )
    receipt = receipts[0] if receipts else None
    others = [e for e in events if e is not receipt]

    received_at = d.get("received_at", MISSING)
    if received_at is not MISSING:
        received = datetime.fromisoformat(received_at)
    elif receipt is not None:
        received, received_at = receipt.at, receipt.at_text
    elif events:
        received, received_at = events[0].at, events[0].at_text
    else:
        raise CaseRejected("no events and no [dossier].received_at", case.line, did)

    resolved_at = d.get("resolved_at", MISSING)
    if resolved_at is not MISSING:
        resolved = datetime.fromisoformat(resolved_at)
        if resolved < received:
            raise CaseRejected(
                f"the case ends (resolved_at {resolved_at}) before it starts "
                f"(received_at {received_at})",
                case.line,
                did,
            )
        if not any(e.etype == "ResultIssued" for e in others):
            decision = d.get("decision", MISSING)
            others.append(
                _Event(
                    at=resolved,
                    at_text=resolved_at,
                    order=(1, 0),
                    etype="ResultIssued",
                    actor={"id": IMPORT_ACTOR, "role": "system", "agency": d["agency"]},
                    step="",
                    data={"decision": "approved" if decision is MISSING else decision},
                    recorded_at=None,
                    event_id=event_id(did, "ResultIssued", resolved_at),
                    line=case.line,
                    attrs={},
                    rule_data=[],
                )
            )
            others.sort(key=lambda e: (e.at, e.order))

    rule_set = _rule_set(d, did, received, rules, case.line)
    envelopes: list[dict[str, Any]] = []
    lines: list[int | None] = []
    receipt_env = _receipt(d, did, received_at, receipt, case)
    envelopes.append(receipt_env)
    lines.append(receipt.line if receipt else case.line)
    holder = (receipt_env["actor"]["id"], receipt_env["actor"]["agency"])
    for e in others:
        data = _data(e, plan, d, holder)
        envelopes.append(
            {
                "event_id": e.event_id,
                "dossier_id": did,
                "type": e.etype,
                "occurred_at": e.at_text,
                "recorded_at": e.recorded_at or e.at_text,
                "actor": e.actor,
                "data": data,
                "schema_version": SCHEMA_VERSION,
            }
        )
        lines.append(e.line)
        if e.etype == "HandedOver":
            holder = (data["to_official"], data["to_agency"])
        elif e.etype == "TransferredToAgency":
            holder = (e.actor["id"], data["to_agency"])
    _judge(envelopes, lines, did, rule_set)
    return MappedCase(did, envelopes, lines, duplicates)


def _events(
    case: SourceCase, mapping: Mapping, plan: Plan, did: str, agency: str
) -> tuple[list[_Event], int]:
    """The case's events, exact duplicates dropped, in time order (file order on ties)."""
    seen: set[bytes] = set()
    out: list[_Event] = []
    duplicates = 0
    fromiso = datetime.fromisoformat
    for i, src in enumerate(case.events):
        key = _canonical(src.attrs)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        a = src.attrs
        try:
            at_text = plan.at(a)
            if at_text is MISSING:
                raise MapError(f"[event].at: no {mapping.event['at'].attr!r}")
            try:
                at = fromiso(at_text)
            except ValueError:
                raise MapError(f"[event].at: not a timestamp: {at_text!r}") from None
            step = plan.step(a)
            if step is MISSING:
                raise MapError(f"[event].step: no {mapping.event['step'].attr!r}")
            rule = plan.rules.get(step)
            if rule is not None:
                etype, rule_data = rule
            else:
                etype, rule_data = "StepCompleted", []
                if plan.type is not None:
                    named = plan.type(a)
                    if named in EVENT_TYPES:
                        etype = named
            actor = plan.actor(a)
            role = plan.role(a)
            unit = plan.agency(a)
            recorded = plan.recorded_at(a)
        except MapError as e:
            where = f"event {i + 1}" if src.line is None else "event"
            raise CaseRejected(f"{where}: {e}", src.line, did) from None
        if actor is MISSING:
            raise CaseRejected(
                f"event: [event].actor: no {mapping.event['actor'].attr!r} and no default"
                if "actor" in mapping.event
                else "event: [event].actor: not mapped",
                src.line,
                did,
            )
        if role is MISSING:
            role = "receiver" if etype == "DossierReceived" else "handler"
        out.append(
            _Event(
                at=at,
                at_text=at_text,
                order=(0, i),
                etype=etype,
                actor={"id": actor, "role": role, "agency": agency if unit is MISSING else unit},
                step=step,
                data={},
                recorded_at=None if recorded is MISSING else recorded,
                event_id=event_id(did, key),
                line=src.line,
                attrs=a,
                rule_data=rule_data,
            )
        )
    out.sort(key=lambda e: (e.at, e.order))
    return out, duplicates


def _receipt(
    d: dict[str, Any], did: str, received_at: str, receipt: _Event | None, case: SourceCase
) -> dict[str, Any]:
    applicant_id = d.get("applicant_id", MISSING)
    applicant_name = d.get("applicant_name", MISSING)
    data: dict[str, Any] = {
        "procedure_code": d["procedure_code"],
        "procedure_version": d["procedure_version"],
        "agency": d["agency"],
        "channel": d["channel"],
        "applicant": {
            # A case log names no applicant: one of its own per case, never linked to another.
            "name": "(not in the log)" if applicant_name is MISSING else applicant_name,
            "id_number": f"case:{did}" if applicant_id is MISSING else applicant_id,
        },
        "documents": [] if d.get("documents", MISSING) is MISSING else d["documents"],
        "processing_time": d["processing_time"],
    }
    for name in ("appointment_at", "rule_set", "lead_agency", "online_level", "fee"):
        value = d.get(name, MISSING)
        if value is not MISSING:
            data[name] = value
    if receipt is not None:
        actor, eid, rec = receipt.actor, receipt.event_id, receipt.recorded_at
    else:
        actor = {"id": IMPORT_ACTOR, "role": "system", "agency": d["agency"]}
        eid, rec = event_id(did, "DossierReceived"), None
    return {
        "event_id": eid,
        "dossier_id": did,
        "type": "DossierReceived",
        "occurred_at": received_at,
        "recorded_at": rec or received_at,
        "actor": actor,
        "data": data,
        "schema_version": SCHEMA_VERSION,
    }


# What a lifecycle event needs when the mapping does not say: (field, default source).
_DEFAULTS: dict[str, dict[str, str]] = {
    "HandedOver": {
        "from_official": "holder",
        "from_agency": "holder_agency",
        "to_official": "actor",
        "to_agency": "agency",
        "step": "step",
    },
    "StepCompleted": {"step": "step"},
    "SupplementRequested": {"documents": "none", "reason": "step"},
    "SupplementReceived": {"documents": "none"},
    "ClockPaused": {"reason": "step"},
    "ClockResumed": {"reason": "step"},
    "TransferredToAgency": {"to_agency": "agency", "task": "step"},
    "ResultIssued": {"decision": "decision"},
    "ResultReturned": {"channel": "channel"},
}


def _data(e: _Event, plan: Plan, d: dict[str, Any], holder: tuple[str, str]) -> dict[str, Any]:
    if e.data:  # an event the importer made
        return e.data
    data: dict[str, Any] = {}
    try:
        for getters in (plan.data[e.etype], e.rule_data):
            for name, get in getters:
                value = get(e.attrs)
                if value is not MISSING:
                    data[name] = value
    except MapError as err:
        raise CaseRejected(f"event: {err}", e.line, d["id"]) from None
    defaults = _DEFAULTS.get(e.etype)
    if defaults:
        decision = d.get("decision", MISSING)
        sources = {
            "holder": holder[0],
            "holder_agency": holder[1],
            "actor": e.actor["id"],
            "agency": e.actor["agency"],
            "step": e.step,
            "none": [],
            "decision": "approved" if decision is MISSING else decision,
            "channel": d["channel"],
        }
        for name, source in defaults.items():
            if name not in data:
                data[name] = sources[source]
    return data


def _rule_set(
    d: dict[str, Any], did: str, received: datetime, rules: RuleBook, line: int | None
) -> Any:
    named = d.get("rule_set", MISSING)
    if named is not MISSING:
        try:
            return rules.get(named)
        except KeyError:
            raise CaseRejected(
                f"dossier {did}: data.rule_set: unknown rule set {named!r}", line, did
            ) from None
    try:
        return rules.in_force(received)
    except NoRuleSetInForce as e:
        raise CaseRejected(str(NoRuleSetForDossier(did, e.day.isoformat())), line, did) from None


def _judge(
    envelopes: list[dict[str, Any]], lines: list[int | None], did: str, rule_set: Any
) -> None:
    """Validate and fold the case as the ledger will, from a new dossier."""
    state = EMPTY
    for env, line in zip(envelopes, lines, strict=True):
        try:
            validate(env)
            check(state, env, ordering_tolerance=rule_set.ordering_tolerance)
        except (EnvelopeError, ImpossibleEvent) as e:
            reason = str(e) if isinstance(e, ImpossibleEvent) else f"dossier {did}: {e}"
            raise CaseRejected(reason, line, did) from None
        state = evolve(state, env)
