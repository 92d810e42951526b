"""The process control sheet (Form 05 of Circular 01/2018): the chain of custody.

One row per hand-over (``HandedOver`` and ``TransferredToAgency``): who gave
the dossier and who received it, when, the receiving party's step and its
deadline, whether that step ended early, on time or late, and a note naming
custody gaps (an unacknowledged hand-over) and back-and-forth hand-offs.

A step's deadline is its hand-over instant plus the step budget (from the
hand-over or transfer slip) on the receiving agency's working-day clock,
extended by clock pauses and supplement waits that fall inside the step. A step
with no budget is judged against the dossier's deadline of record. A step ends
when its holder completes it (``StepCompleted``), hands the dossier on, or the
dossier's result is issued, it is returned or withdrawn; until then its result
is empty.

Pure: rows are derived from a fact sheet of :mod:`projections.state`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ledger.clock import BusinessCalendar, classify_finished
from ledger.rules import RuleBook
from projections.state import (
    Facts,
    duration,
    intervals,
    iso,
    rule_set,
    view,
    working_total,
)

_ZERO = timedelta(0)

RESULT_LABELS = {"EARLY": "early", "ON_TIME": "on time", "LATE": "late"}

COLUMNS = (
    "seq",
    "handed_at",
    "from_official",
    "from_agency",
    "to_official",
    "to_agency",
    "step",
    "budget",
    "step_deadline",
    "step_ended_at",
    "step_working_s",
    "result",
    "note",
)


def step_deadline(cal: BusinessCalendar, start: datetime, budget: Any) -> datetime:
    """When a step given ``budget`` at ``start`` is due, on the holder's clock."""
    d = duration(budget)
    if d.unit == "working_hours":
        return cal.add_working_time(start, timedelta(hours=d.value))
    if d.unit in ("hours", "minutes"):
        return start + d.as_timedelta()
    return cal.due(start, d)


def step_end(facts: Facts, index: int) -> datetime | None:
    """When the step opened by hand-over ``index`` ended (None: still running)."""
    handovers = facts["handovers"]
    following = handovers[index + 1]["at"] if index + 1 < len(handovers) else None
    start = datetime.fromisoformat(handovers[index]["at"])
    return _step_end(
        handovers[index]["completed_at"],
        None if following is None else datetime.fromisoformat(following),
        _end_after(custody_ends(facts), start),
    )


def custody_ends(facts: Facts) -> list[datetime]:
    """Instants that end whoever holds the dossier: the result, its return, a withdrawal."""
    return sorted(
        datetime.fromisoformat(facts[key])
        for key in ("result_at", "returned_at", "withdrawn_at")
        if facts.get(key) is not None
    )


def _end_after(ends: list[datetime], start: datetime) -> datetime | None:
    """The first of ``ends`` at or after a step's start: a step opened after the result
    (the hand-back to the desk) runs until the return, not until the result."""
    return next((e for e in ends if e >= start), None)


def _step_end(
    completed_at: str | None, next_handed: datetime | None, dossier_end: datetime | None
) -> datetime | None:
    """The earliest of the step's completion, the next hand-over and the dossier's end
    (the first of equal instants, as ``min`` picks)."""
    end = None if completed_at is None else datetime.fromisoformat(completed_at)
    if next_handed is not None and (end is None or next_handed < end):
        end = next_handed
    if dossier_end is not None and (end is None or dossier_end < end):
        end = dossier_end
    return end


def paused_between(
    cal: BusinessCalendar, facts: Facts, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Clock pauses and supplement waits clipped to [start, end]."""
    out = []
    for a, b in intervals(facts["pauses"], end) + intervals(facts["supplements"], end):
        a, b = max(a, start), min(b, end)
        if a < b:
            out.append((a, b))
    return out


def rows(facts: Facts, rules: RuleBook, *, dossier_due: str | None = None) -> list[dict[str, Any]]:
    """The control sheet's rows, in hand-over order (``dossier_due``: the deadline of
    record, if the caller already has it).

    The rebuild derives this for every dossier, so :func:`_end_after`,
    :func:`_step_end` and :func:`step_deadline` are written out in the loop, and a
    step deadline the clock hands out again (the close of a day) is formatted once.
    """
    handovers = facts.get("handovers") or []
    if not handovers:
        return []
    fromiso = datetime.fromisoformat
    rs = rule_set(rules, facts)
    granularity = rs.granularity
    due_of_record = None if dossier_due is None else fromiso(dossier_due)
    ends = custody_ends(facts)
    waits = bool(facts["pauses"] or facts["supplements"])
    starts = [fromiso(h["at"]) for h in handovers]
    last = len(starts) - 1
    home = facts["agency"]
    calendars: dict[str, BusinessCalendar] = {}
    out: list[dict[str, Any]] = []
    earlier: dict[str, Any] | None = None
    for i, h in enumerate(handovers):
        agency = h["to_agency"] or home
        cal = calendars.get(agency)
        if cal is None:
            cal = calendars[agency] = BusinessCalendar.for_rules(rs, agency)
        start = starts[i]
        # The step's end: the earliest of its completion, the next hand-over and the
        # first dossier end at or after its start (the first of equal instants).
        completed_at = h["completed_at"]
        end = None if completed_at is None else fromiso(completed_at)
        if i < last:
            following = starts[i + 1]
            if end is None or following < end:
                end = following
        for e in ends:
            if e >= start:
                if end is None or e < end:
                    end = e
                break
        notes = []
        if h["acknowledged"] is False:
            notes.append("custody gap: receipt not acknowledged")
        if (
            earlier is not None
            and h["to_official"] is not None
            and earlier["from_official"] == h["to_official"]
        ):
            notes.append("returned to the previous holder")
        if h["kind"] == "TransferredToAgency":
            notes.append("inter-agency transfer")
        if waits and end is not None:
            pauses = paused_between(cal, facts, start, end)
            paused = working_total(cal, pauses)
        else:
            pauses, paused = [], _ZERO
        budget = h["budget"]
        if budget is not None:
            d = duration(budget)
            unit = d.unit
            if unit == "working_hours":
                deadline = cal.add_working_time(start, timedelta(hours=d.value))
            elif unit in ("hours", "minutes"):
                deadline = start + d.as_timedelta()
            else:
                deadline = cal.due(start, d)
            if paused > _ZERO:
                deadline = cal.add_working_time(deadline, paused)
        else:
            if due_of_record is None:
                due_of_record = fromiso(view(facts, rules)["original_due_at"])
            deadline = due_of_record
            notes.append("no step budget: judged against the dossier deadline")
        if end is not None:
            result = RESULT_LABELS[classify_finished(end, deadline, granularity, cal.tz)]
            spent = int(cal.working_time(start, end, pauses).total_seconds()) if end > start else 0
            ended_at = end.isoformat()
        else:
            result = spent = ended_at = None
        if h["note"]:
            notes.append(h["note"])
        out.append(
            {
                "seq": h["seq"],
                "position": h["position"],
                "event_id": h["event_id"],
                "handed_at": h["at"],
                "from_official": h["from_official"],
                "from_agency": h["from_agency"],
                "to_official": h["to_official"],
                "to_agency": h["to_agency"],
                "step": h["step"],
                "budget": budget,
                "acknowledged": h["acknowledged"],
                "step_deadline": iso(deadline),
                "step_ended_at": ended_at,
                "step_working_s": spent,
                "result": result,
                "note": "; ".join(notes),
            }
        )
        earlier = h
    return out


def header(facts: Facts, rules: RuleBook) -> dict[str, Any]:
    """Form 05's header: code, procedure, receipt and appointment, handling body."""
    v = view(facts, rules)
    return {
        "dossier_id": v["dossier_id"],
        "procedure_code": v["procedure_code"],
        "procedure_version": v["procedure_version"],
        "agency": v["agency"],
        "lead_agency": facts.get("lead_agency"),
        "channel": v["channel"],
        "received_at": v["received_at"],
        "appointment_at": v["appointment_at"],
        "original_due_at": v["original_due_at"],
        "current_due_at": v["current_due_at"],
        "status": v["status"],
        "on_time": v["on_time"],
    }
