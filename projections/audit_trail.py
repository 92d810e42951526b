"""A dossier's audit trail: one row per event, in ledger order.

Each row names the actor (id, role, agency), the step the dossier was in when
the event happened, its business time (``occurred_at``), the source system's
recording time (``recorded_at``) and the ledger's (``appended_at``), the
working time the holder had spent in that step by then (pauses and supplement
waits subtracted) and whether that exceeded the step's allotment.

Pure: a fold ``evolve(trail, recorded) -> trail`` over the dossier fact sheet
of :mod:`projections.state`, with the rule book passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from projections import state as dossier_state
from projections.control_sheet import paused_between, step_deadline

COLUMNS = (
    "position",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "role",
    "agency",
    "step",
    "step_working_s",
    "over_allotment",
    "detail",
)


@dataclass(frozen=True)
class Trail:
    """The fold's state: the dossier's facts so far and the rows written."""

    facts: dossier_state.Facts = field(default_factory=dict)
    rows: tuple[dict[str, Any], ...] = ()


def detail(envelope: dict[str, Any]) -> str:
    """A one-line summary of an event's data for the trail."""
    d = envelope["data"]
    match envelope["type"]:
        case "DossierReceived":
            return f"{d['procedure_code']} v{d['procedure_version']} via {d['channel']}"
        case "HandedOver":
            return f"{d['from_official']} -> {d['to_official']} ({d['to_agency']}): {d['step']}"
        case "TransferredToAgency":
            return f"to {d['to_agency']}: {d['task']}"
        case "StepCompleted":
            return f"{d['step']}" + (f": {d['outcome']}" if d.get("outcome") else "")
        case "SupplementRequested" | "SupplementReceived":
            return ", ".join(d["documents"])
        case "ClockPaused" | "ClockResumed":
            return d["reason"]
        case "ApologyIssued":
            return f"new appointment {d.get('new_appointment_at')}: {d.get('reason') or ''}".strip()
        case "ResultIssued":
            return d["decision"] + (f": {d['reason']}" if d.get("reason") else "")
        case "ResultReturned":
            return f"via {d['channel']}"
        case "DossierWithdrawn":
            return d.get("reason") or ""
        case "FeedbackGiven":
            return " ".join(
                f"{k}={d[k]}" for k in ("rating", "complaint", "comment") if d.get(k) is not None
            )
        case _:
            raise TypeError(f"unknown event type {envelope['type']!r}")


def _step_spent(
    facts: dossier_state.Facts, rules: RuleBook, at: datetime
) -> tuple[int | None, bool | None]:
    """Working time spent in the current step by ``at``, and whether it overran."""
    if not facts:
        return None, None
    cal = dossier_state.calendar(rules, facts, facts["holder_agency"])
    start = datetime.fromisoformat(facts["holder_since"])
    if at <= start:
        return 0, False
    pauses = paused_between(cal, facts, start, at)
    spent = cal.working_time(start, at, pauses)
    budget = facts.get("step_budget")
    if budget is None:
        return int(spent.total_seconds()), None
    deadline = step_deadline(cal, start, budget)
    allotment = cal.working_time(start, deadline) if deadline > start else timedelta(0)
    return int(spent.total_seconds()), spent > allotment


def evolve(trail: Trail, recorded: Recorded, rules: RuleBook) -> Trail:
    """Add one event's row; the step figures describe the step it closed or fell in."""
    env = recorded.envelope
    at = datetime.fromisoformat(env["occurred_at"])
    before = trail.facts
    spent, over = _step_spent(before, rules, at)
    actor = env["actor"]
    row = {
        "position": recorded.position,
        "version": recorded.version,
        "event_id": env["event_id"],
        "type": env["type"],
        "occurred_at": env["occurred_at"],
        "recorded_at": env.get("recorded_at"),
        "appended_at": env.get("appended_at"),
        "actor": actor["id"],
        "role": actor["role"],
        "agency": actor["agency"],
        "step": before.get("step", dossier_state.INTAKE_STEP),
        "step_budget": before.get("step_budget"),
        "step_working_s": spent,
        "over_allotment": over,
        "detail": detail(env),
    }
    return Trail(dossier_state.evolve(before, recorded), (*trail.rows, row))


def rows(records: list[Recorded], rules: RuleBook) -> list[dict[str, Any]]:
    trail = Trail()
    for rec in records:
        trail = evolve(trail, rec, rules)
    return list(trail.rows)
