"""Working-time arithmetic for the simulator, over the working-day calendar.

Officials act in office hours on working days only, so every instant the
simulator makes goes through :meth:`Timing.after`, which moves forward in
office time and never lands on a closing instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from ledger.domain.durations import Duration
from ledger.domain.working_calendar import BusinessCalendar

MINUTE = timedelta(minutes=1)
MONTH_DAYS = 30


def fmt(t: datetime) -> str:
    """An event instant: ISO 8601 to the second, with the agency's offset (+07:00)."""
    return t.isoformat(timespec="seconds")


class Timing:
    def __init__(self, cal: BusinessCalendar) -> None:
        self.cal = cal
        self.day_minutes = cal.working_day_length / MINUTE

    def after(self, t: datetime, minutes: float) -> datetime:
        """``minutes`` of office time after ``t`` (at least one), inside office hours."""
        minutes = max(1.0, minutes)
        r = self.cal.add_working_time(t, timedelta(minutes=minutes)).replace(microsecond=0)
        if not self.cal.in_office_hours(r):  # landed exactly on a close
            r -= MINUTE
            if r <= t:
                r = t + timedelta(seconds=30)
        return r

    def at_day(self, d: date, minutes: float) -> datetime:
        """``minutes`` of office time into working day ``d``."""
        return self.after(self.cal.office_start(d), minutes)

    def minutes_between(self, a: datetime, b: datetime) -> float:
        return 0.0 if b <= a else self.cal.working_time(a, b) / MINUTE

    def budget_minutes(self, start: datetime, budget: Duration) -> float:
        """A budget as office minutes counted from ``start``."""
        unit, value = budget.unit, budget.value
        if unit == "working_days":
            return value * self.day_minutes
        if unit == "working_hours":
            return value * 60
        if unit in ("calendar_days", "months"):
            days = value * (MONTH_DAYS if unit == "months" else 1)
            return self.minutes_between(start, start + timedelta(days=days))
        return self.day_minutes / 2  # same_day: half a working day

    def plan_end(self, start: datetime, budget: Duration, factor: float) -> datetime:
        """When a holder who uses ``factor`` of ``budget`` is done."""
        return self.after(start, factor * self.budget_minutes(start, budget))

    def used(
        self,
        start: datetime,
        end: datetime,
        budget: Duration,
        pauses: Iterable[tuple[datetime, datetime]] = (),
    ) -> float | None:
        """Share of ``budget`` used by a holding [start, end) minus supplement waits.

        Working units count office time; calendar days and months count elapsed
        time (a month is 30 days). None for ``same_day`` or a zero budget.
        """
        unit, value = budget.unit, budget.value
        if unit == "same_day" or value <= 0:
            return None
        pauses = [(max(a, start), min(b, end)) for a, b in pauses if b > start and a < end]
        if unit in ("working_days", "working_hours"):
            spent = self.cal.working_time(start, end, pauses) / MINUTE
            per = self.day_minutes if unit == "working_days" else 60
            return spent / (value * per)
        elapsed = (end - start) - sum((b - a for a, b in pauses), timedelta())
        days = value * (MONTH_DAYS if unit == "months" else 1)
        return elapsed / timedelta(days=days)
