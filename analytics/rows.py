"""Rows of the analysts' tables as Arrow batches, and the statements that insert them.

Pure shaping: every value comes from a fold and its :func:`projections.state.view`
(or the control sheet); the SQL only casts texts to instants and derives local wall
times in the rule set's time zone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from analytics.schema import DOSSIER_COLUMNS, HANDOVER_COLUMNS, PERIOD_END_COLUMNS
from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from projections.control_sheet import rows as control_rows
from projections.state import Facts, calendar, rule_set

if TYPE_CHECKING:
    import pyarrow as pa

EVENT_INSERT = (
    "INSERT INTO events SELECT position, event_id, dossier_id, type, "
    "CAST(occurred_at AS TIMESTAMPTZ), CAST(recorded_at AS TIMESTAMPTZ), "
    "CAST(appended_at AS TIMESTAMPTZ), actor_id, actor_role, agency, CAST(data AS JSON), "
    "hash, prev_hash FROM loader_events"
)

_LOCALS = {"received_local": "received_at", "ended_local": "ended_at"}
_LOCALS |= {"original_due_local": "original_due_at", "due_766_local": "due_766_at"}


def _select(columns: dict[str, str], source: str) -> str:
    """``SELECT`` of ``columns`` from an Arrow batch of strings: instants cast, local
    wall times derived in the row's time zone (``tz``)."""
    out = []
    for c, t in columns.items():
        if c in _LOCALS:
            out.append(f"timezone(tz, CAST({_LOCALS[c]} AS TIMESTAMPTZ)) AS {c}")
        elif t.startswith("TIMESTAMPTZ"):
            out.append(f"CAST({c} AS TIMESTAMPTZ) AS {c}")
        elif t.startswith("DATE"):
            out.append(f"CAST({c} AS DATE) AS {c}")
        else:
            out.append(c)
    return f"SELECT {', '.join(out)} FROM {source}"


DOSSIER_SELECT = _select(DOSSIER_COLUMNS, "loader_dossiers")
HANDOVER_INSERT = "INSERT INTO handovers " + _select(HANDOVER_COLUMNS, "loader_handovers")
PERIOD_SELECT = _select(PERIOD_END_COLUMNS, "loader_periods")


def event_batch(recs: list[Recorded]) -> pa.Table:
    """The ``events`` rows of a page as one Arrow table (the applicant reduced to its pseudonym)."""
    import pyarrow as pa

    cols: dict[str, list[Any]] = {
        c: []
        for c in (
            "position",
            "event_id",
            "dossier_id",
            "type",
            "occurred_at",
            "recorded_at",
            "appended_at",
            "actor_id",
            "actor_role",
            "agency",
            "data",
            "hash",
            "prev_hash",
        )
    }
    for rec in recs:
        env = rec.envelope
        actor = env.get("actor") or {}
        data = env.get("data")
        if isinstance(data, dict) and isinstance(data.get("applicant"), dict):
            # Only the pseudonym: the sealed block never reaches DuckDB.
            data = {**data, "applicant": {"pseudonym": data["applicant"].get("pseudonym")}}
        cols["position"].append(rec.position)
        cols["event_id"].append(env["event_id"])
        cols["dossier_id"].append(env["dossier_id"])
        cols["type"].append(env["type"])
        cols["occurred_at"].append(env["occurred_at"])
        cols["recorded_at"].append(env.get("recorded_at"))
        cols["appended_at"].append(env.get("appended_at"))
        cols["actor_id"].append(actor.get("id"))
        cols["actor_role"].append(actor.get("role"))
        cols["agency"].append(actor.get("agency"))
        cols["data"].append(orjson.dumps(data).decode())
        cols["hash"].append(env.get("hash"))
        cols["prev_hash"].append(env.get("prev_hash"))
    batch = pa.table(
        {
            c: pa.array(v, type=pa.int64() if c == "position" else pa.string())
            for c, v in cols.items()
        }
    )
    return batch


def dossier_rows(
    f: Facts, rules: RuleBook, v: dict[str, Any], v7: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``dossiers`` row and the ``handovers`` rows of one fold, from its view ``v`` and
    its view on the 766 clock ``v7`` (no deadline is computed here)."""
    rs = rule_set(rules, f)
    late_days = None
    if v["ended_at"] is not None and v["on_time"] == "LATE":
        day_s = calendar(rules, f).working_day_length.total_seconds()
        late_days = round(max(-v["working_left_s"], 0) / day_s, 3)
    handling = None
    for h in f["handovers"]:
        if h["step"] == "appraisal" and h["to_official"]:
            handling = h["to_official"]
    end_kind = None
    if v["ended_at"] is not None:
        end_kind = next(
            k
            for k, key in (
                ("result", "result_at"),
                ("returned", "returned_at"),
                ("withdrawn", "withdrawn_at"),
            )
            if f.get(key) is not None
        )
    allowance = v["allowance"]
    row = {
        "dossier_id": v["dossier_id"],
        "applicant": f.get("applicant"),
        "procedure_code": v["procedure_code"],
        "procedure_version": v["procedure_version"],
        "agency": v["agency"],
        "lead_agency": f.get("lead_agency"),
        "channel": v["channel"],
        "rule_set": v["rule_set"],
        "supplement_mode": v["supplement_mode"],
        "granularity": rs.granularity,
        "status": v["status"],
        "received_at": v["received_at"],
        "ended_at": v["ended_at"],
        "end_kind": end_kind,
        "result": v["result"],
        "allowance_value": allowance.get("value"),
        "allowance_unit": allowance.get("unit"),
        "appointment_at": v["appointment_at"],
        "computed_due_at": v["computed_due_at"],
        "original_due_at": v["original_due_at"],
        "current_due_at": v["current_due_at"],
        "due_766_at": v7["original_due_at"],
        "on_time": v["on_time"],
        "on_time_766": v7["on_time"],
        "late_working_days": late_days,
        "awaiting_supplement": v["awaiting_supplement"],
        "supplement_requests": v["supplement_requests"],
        "apologies": v["apologies"],
        "handovers": v["handovers"],
        "events": v["events"],
        "holder": v["holder"],
        "holder_agency": v["holder_agency"],
        "step": v["step"],
        "handling_official": handling or v["holder"],
        "working_used_s": v["working_used_s"],
        "last_position": v["last_position"],
        "last_occurred_at": v["last_occurred_at"],
        "tz": rs.timezone,
    }
    hrows = []
    for h in control_rows(f, rules, dossier_due=v["original_due_at"]):
        budget = h["budget"] or {}
        hrows.append(
            {
                "dossier_id": v["dossier_id"],
                "seq": h["seq"],
                "position": h["position"],
                "event_id": h["event_id"],
                "handed_at": h["handed_at"],
                "from_official": h["from_official"],
                "from_agency": h["from_agency"],
                "to_official": h["to_official"],
                "to_agency": h["to_agency"],
                "step": h["step"],
                "budget_value": budget.get("value"),
                "budget_unit": budget.get("unit"),
                "acknowledged": h["acknowledged"],
                "step_deadline": h["step_deadline"],
                "step_ended_at": h["step_ended_at"],
                "step_working_s": h["step_working_s"],
                "result": h["result"],
                "note": h["note"] or None,
            }
        )
    return row, hrows


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = rows[0].keys()
    return {k: [r[k] for r in rows] for k in keys}


_INT_COLS = {"position", "seq", "supplement_requests", "apologies", "handovers", "events"}
_INT_COLS |= {"working_used_s", "last_position", "step_working_s"}
_FLOAT_COLS = {"allowance_value", "budget_value", "late_working_days"}
_BOOL_COLS = {"awaiting_supplement", "acknowledged"}


def arrow(cols: dict[str, list[Any]]) -> pa.Table:
    import pyarrow as pa

    out = {}
    for c, v in cols.items():
        if c in _INT_COLS:
            out[c] = pa.array(v, pa.int64())
        elif c in _FLOAT_COLS:
            out[c] = pa.array(v, pa.float64())
        elif c in _BOOL_COLS:
            out[c] = pa.array(v, pa.bool_())
        else:
            out[c] = pa.array(v, pa.string())
    return pa.table(out)
