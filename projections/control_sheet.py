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
from operator import itemgetter
from typing import Any

from ledger.domain.deadlines import FINISHED, classify_finished
from ledger.domain.rules import RuleBook
from ledger.domain.working_calendar import BusinessCalendar
from projections.state import (
    Facts,
    as_written,
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


_DAY_UNITS = frozenset(("working_days", "calendar_days", "months"))
_STEP_DUES: dict[tuple[Any, ...], tuple[datetime, str, int]] = {}
"""Step deadlines (with their text and local day) by (calendar, local start day, budget):
with a budget of whole days the clock's due instant depends on the start's day only
(see ``BusinessCalendar.due``), and a province reuses a few dozen budgets over a few
hundred days. The key holds the calendar itself, never a reused id."""
_STEP_DUES_MAX = 20_000
"""Cleared when full: the days in use are the last few weeks' (measured: at 100,000 the
entries of a whole year's days held ~25 MB more at 1,000,000 events than at 250,000)."""


def entries(
    facts: Facts, rules: RuleBook, dossier_due: str | None
) -> list[tuple[dict[str, Any], str, str | None, int | None, str | None, str]]:
    """Per hand-over: (hand-over, step deadline, step end, working seconds, result, note):
    the values of :func:`rows` without the row dict (the rebuild makes table rows of them).

    The rebuild derives this for every dossier, so :func:`_end_after`,
    :func:`_step_end` and :func:`step_deadline` are written out in the loop; each
    instant is moved to the agency's time zone and counted in office time once
    (a step's end is usually the next step's start); the working time of a step
    without pauses is the difference of two counts; a step deadline the clock
    hands out again (the close of a day) is formatted once, and a step end whose
    event text is already ``isoformat``'s is not formatted at all.
    """
    handovers = facts.get("handovers") or []
    if not handovers:
        return []
    fromiso = datetime.fromisoformat
    rs = rule_set(rules, facts)
    granularity = rs.granularity
    by_date = granularity == "date"
    due_of_record = due_text = None
    ends = [
        (fromiso(text), text)
        for text in (facts.get("result_at"), facts.get("returned_at"), facts.get("withdrawn_at"))
        if text is not None
    ]
    if len(ends) > 1:
        ends.sort(key=itemgetter(0))  # stable: as custody_ends' sorted()
    waits = bool(facts["pauses"] or facts["supplements"])
    starts = [fromiso(h["at"]) for h in handovers]
    for s in starts:
        if s.tzinfo is None:
            raise ValueError(f"handed_at: naive datetime {s.isoformat()} (an offset is required)")
    last = len(starts) - 1
    home = facts["agency"]
    calendars: dict[str, BusinessCalendar] = {}
    out = []
    earlier: dict[str, Any] | None = None
    # The last step end counted: (instant, calendar, local instant, office µs).
    seen: tuple[Any, Any, Any, int] = (None, None, None, 0)
    for i, h in enumerate(handovers):
        agency = h["to_agency"] or home
        cal = calendars.get(agency)
        if cal is None:
            cal = calendars[agency] = BusinessCalendar.for_rules(rs, agency)
        tz = cal.tz
        start = starts[i]
        if seen[0] is start and seen[1] is cal:
            local_start, start_us = seen[2], seen[3]
        else:
            local_start, start_us = start.astimezone(tz), None
        # The step's end: the earliest of its completion, the next hand-over and the
        # first dossier end at or after its start (the first of equal instants).
        end_text = h["completed_at"]
        end = None if end_text is None else fromiso(end_text)
        if i < last:
            following = starts[i + 1]
            if end is None or following < end:
                end, end_text = following, handovers[i + 1]["at"]
        for e, e_text in ends:
            if e >= start:
                if end is None or e < end:
                    end, end_text = e, e_text
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
        deadline_day = None  # the deadline's local ordinal, when known
        if budget is not None:
            key = (cal, local_start.toordinal(), budget.get("value"), budget["unit"])
            hit = _STEP_DUES.get(key)
            if hit is not None:
                deadline, text, deadline_day = hit
            else:
                d = duration(budget)
                unit = d.unit
                if unit == "working_hours":
                    deadline = cal.add_working_time(local_start, timedelta(hours=d.value))
                elif unit in ("hours", "minutes"):
                    deadline = start + d.as_timedelta()
                else:
                    deadline = cal.due(local_start, d)
                text = None
                if unit in _DAY_UNITS and d.value >= 1:  # depends on the start's day only
                    text, deadline_day = iso(deadline), deadline.astimezone(tz).toordinal()
                    if len(_STEP_DUES) >= _STEP_DUES_MAX:
                        _STEP_DUES.clear()
                    _STEP_DUES[key] = (deadline, text, deadline_day)
            if paused > _ZERO:
                deadline = cal.add_working_time(deadline, paused)
                text = deadline_day = None
        else:
            if due_of_record is None:
                if dossier_due is None:
                    dossier_due = view(facts, rules)["original_due_at"]
                due_of_record = fromiso(dossier_due)
                due_text = dossier_due if as_written(dossier_due) else iso(due_of_record)
            deadline, text = due_of_record, due_text
            notes.append("no step budget: judged against the dossier deadline")
        if end is not None:
            if end.tzinfo is None:
                raise ValueError(f"end: naive datetime {end.isoformat()} (an offset is required)")
            local_end = end.astimezone(tz)
            end_us = cal.office_us(local_end)
            seen = (end, cal, local_end, end_us)
            if by_date and deadline.tzinfo is not None:
                if deadline_day is None:
                    deadline_day = deadline.astimezone(tz).toordinal()
                day = local_end.toordinal()
                result = RESULT_LABELS[FINISHED[(day > deadline_day) - (day < deadline_day) + 1]]
            else:
                result = RESULT_LABELS[classify_finished(end, deadline, granularity, tz)]
            if end <= start:
                spent = 0
            elif pauses:
                spent = int(cal.working_time(local_start, local_end, pauses).total_seconds())
            else:
                if start_us is None:
                    start_us = cal.office_us(local_start)
                # working_time(start, end).total_seconds(): µs over 10**6, truncated
                spent = int((end_us - start_us) / 1_000_000)
            ended_at = end_text if as_written(end_text) else end.isoformat()
        else:
            result = spent = ended_at = None
        if h["note"]:
            notes.append(h["note"])
        if text is None:
            text = iso(deadline)
        out.append((h, text, ended_at, spent, result, "; ".join(notes)))
        earlier = h
    return out


def rows(facts: Facts, rules: RuleBook, *, dossier_due: str | None = None) -> list[dict[str, Any]]:
    """The control sheet's rows, in hand-over order (``dossier_due``: the deadline of
    record, if the caller already has it)."""
    return [
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
            "budget": h["budget"],
            "acknowledged": h["acknowledged"],
            "step_deadline": deadline,
            "step_ended_at": ended_at,
            "step_working_s": spent,
            "result": result,
            "note": note,
        }
        for h, deadline, ended_at, spent, result, note in entries(facts, rules, dossier_due)
    ]


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
