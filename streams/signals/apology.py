"""Apology signals (brief §8.4; §4.6): late without apology, repeated apology.

* ``late_without_apology``: the end (or *now*) is past the deadline of record
  (``original_due_at`` of :func:`projections.state.view`: the slip's appointment,
  moved by supplement restart or pause and by clock pauses, never by an
  apology) and no valid apology (a reason and a new date, Form 04) was issued
  by ``due - apology_lead``. It fires when the due passes (a timer at
  :func:`ledger.domain.deadlines.overdue_from`, re-armed whenever a supplement or a pause
  moves the due; none while the clock stands still) or at the end of a dossier
  that finished late, whichever comes first.
* ``repeated_apology``: more apologies than the rule set's ``reschedule_limit``
  (one), fired at the one that exceeds it.

Pure.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.deadlines import classify_finished, classify_open, overdue_from
from projections import state
from streams.signals.common import Ctx, office_span, parse

KIND = "late_without_apology"
TIMER = "due"


def _apology_limit(ctx: Ctx, due: datetime) -> tuple[str, Any]:
    """How a timely apology is judged: ("day", last local day) or ("instant", latest)."""
    lead, cal = ctx.rs.apology_lead, ctx.cal
    if lead.unit == "working_days" and ctx.rs.granularity == "date":
        due_day = due.astimezone(cal.tz).date()
        return "day", cal.add_working_days(due_day, -math.ceil(lead.value))
    span = office_span(cal, lead)
    if span is not None:
        return "office", span
    if lead.unit in ("calendar_days", "months"):
        return "instant", due - timedelta(days=lead.value * (30 if lead.unit == "months" else 1))
    return "instant", due - lead.as_timedelta()


def _timely(ctx: Ctx, due: datetime) -> tuple[bool, dict[str, Any]]:
    """Whether a valid apology came by ``due - apology_lead``; and what was seen."""
    how, limit = _apology_limit(ctx, due)
    seen: dict[str, Any] = {"apologies": len(ctx.facts["apologies"]), "invalid": 0, "late": 0}
    for at_text, new_date, reason in ctx.facts["apologies"]:
        if not new_date or not (reason or "").strip():
            seen["invalid"] += 1  # no reason or no new date: not an apology (Form 04)
            continue
        at = parse(at_text)
        if how == "day":
            ok = at.astimezone(ctx.cal.tz).date() <= limit
        elif how == "office":
            ok = at <= due and ctx.cal.working_time(at, due) >= limit
        else:
            ok = at <= limit
        if ok:
            return True, seen
        seen["late"] += 1
    if how == "day":
        seen["apology_by_day"] = limit.isoformat()
    return False, seen


def _fire(ctx: Ctx, due: datetime, at: datetime, seen: dict[str, Any], ended: bool) -> None:
    env = ctx.env
    ids = [ctx.st["rid"]] if "rid" in ctx.st else []
    if env is not None and env["event_id"] not in ids:
        ids.append(env["event_id"])
    ctx.emit(
        KIND,
        "severe" if seen["apologies"] == 0 else "warning",
        anchor="due",
        event_ids=ids,
        params={
            "rule": "brief-8.4",
            "original_due_at": due.isoformat(),
            "apology_lead": ctx.rs.apology_lead.to_json(),
            "supplement_mode": ctx.rs.supplement_mode,
            "ended": ended,
            **seen,
        },
        detected_at=at.isoformat() if env is None else None,
        official_id=None if env is not None else ctx.facts.get("holder"),
        once=KIND,
    )
    ctx.arm(TIMER, None)


def rearm(ctx: Ctx, now: datetime) -> None:
    """Set the timer at the instant the dossier becomes overdue (none while the clock
    stands still: waiting for a supplement, or paused)."""
    if ctx.fired(KIND) or state.end_of(ctx.facts) is not None:
        ctx.arm(TIMER, None)
        return
    v = ctx.view(now)
    if v["awaiting_supplement"] or v["clock_paused"]:
        ctx.arm(TIMER, None)
        return
    due = parse(v["original_due_at"])
    ctx.arm(TIMER, overdue_from(due, ctx.rs.granularity, ctx.cal.tz))


def on_timer(ctx: Ctx, at: datetime) -> None:
    if ctx.fired(KIND) or state.end_of(ctx.facts) is not None:
        ctx.arm(TIMER, None)
        return
    v = ctx.view(at)
    if v["awaiting_supplement"] or v["clock_paused"]:
        ctx.arm(TIMER, None)
        return
    due = parse(v["original_due_at"])
    if classify_open(at, due, ctx.rs.granularity, ctx.cal.tz) != "OVERDUE":
        ctx.arm(TIMER, overdue_from(due, ctx.rs.granularity, ctx.cal.tz))  # the due moved
        return
    timely, seen = _timely(ctx, due)
    if timely:
        ctx.arm(TIMER, None)
        return
    _fire(ctx, due, at, seen, ended=False)


def on_end(ctx: Ctx) -> None:
    """The event that ends the dossier's clock (result, else return, else withdrawal)."""
    ctx.arm(TIMER, None)
    if ctx.fired(KIND) or ctx.st.get("ended"):
        return
    ctx.st["ended"] = 1
    end = state.end_of(ctx.facts)
    assert end is not None
    v = ctx.view(end)
    due = parse(v["original_due_at"])
    if classify_finished(end, due, ctx.rs.granularity, ctx.cal.tz) != "LATE":
        return
    timely, seen = _timely(ctx, due)
    if not timely:
        _fire(ctx, due, end, seen, ended=True)


def on_apology(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    ids = ctx.st.setdefault("apol", [])
    ids.append(env["event_id"])
    limit = ctx.rs.reschedule_limit
    if len(ids) > limit:
        data = env["data"]
        ctx.emit(
            "repeated_apology",
            "warning",
            anchor=env["event_id"],
            event_ids=list(ids),
            params={
                "rule": "brief-8.4",
                "apologies": len(ids),
                "reschedule_limit": limit,
                "new_appointment_at": data.get("new_appointment_at"),
            },
            once="repeated_apology",
        )
