"""Apologies (ND 61 Art 19(9); TT01 Form 04): before the due, with a reason and one new date.

A well-behaved handling body apologises at least the rule set's apology lead
(1 working day) before the due of a dossier it sees will be late. Heads who skip
apologies, or who reschedule twice, are misconduct and labelled; an apology that
cannot be timely (the dossier became late too close to its due) is labelled
``late_without_apology`` too.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from simulator.texts import APOLOGY_REASONS
from simulator.timing import fmt

if TYPE_CHECKING:
    from simulator.scenario import Script


def apologise(
    script: Script, due: datetime, result_at: datetime, since: datetime, result_id: str
) -> None:
    """The handling body apologises before the due, unless it skips it (19(9))."""
    i, t, rng, cal = script.i, script.t, script.rng, script.w.cal
    head = i.office.head
    lead = int(script.w.rule_set.apology_lead.value) or 1
    due_day = due.astimezone(cal.tz).date()
    result_day = result_at.astimezone(cal.tz).date()
    if script.act("no_apology", head):
        script.label("late_without_apology", result_id)
        return
    floor = t.after(since, 5)
    latest_day = cal.add_working_days(due_day, -lead)
    day = cal.add_working_days(due_day, -lead - rng.choice((0, 0, 1)))
    at = t.at_day(day, rng.uniform(30, t.day_minutes - 30))
    if at < floor:
        at = floor
    timely = at.astimezone(cal.tz).date() <= latest_day
    if not timely:
        at = t.after(floor, rng.uniform(5, 60))
        if at >= result_at:
            script.label("late_without_apology", result_id)
            return
        script.label("late_without_apology", result_id)
    final = cal.office_end(cal.add_working_days(result_day, rng.choice((0, 1, 2))))
    gap = cal.working_days_between(due_day, result_day)
    serial = timely and gap >= 1 and script.act("serial_apology", head)
    first_new = final
    if serial:  # a new date too short: a second reschedule follows
        next_day = cal.add_working_days(due_day, 1)
        first_new = cal.office_end(next_day) if gap >= 2 else t.at_day(next_day, 30)
    script.emit(
        "ApologyIssued",
        at,
        head,
        {"reason": rng.choice(APOLOGY_REASONS), "new_appointment_at": fmt(first_new)},
    )
    if serial:
        second = t.at_day(due_day, rng.uniform(30, t.day_minutes - 30))
        if second <= at:
            second = t.after(at, 30)
        if second < result_at:
            sid = script.emit(
                "ApologyIssued",
                second,
                head,
                {"reason": rng.choice(APOLOGY_REASONS), "new_appointment_at": fmt(final)},
            )
            script.label("repeated_apology", sid)
