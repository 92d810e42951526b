"""The working-day calendar: working days, office hours, office time and due instants.

One agency's calendar under one rule set (national holidays, the rule set's
overrides, Saturday reception, office hours, the 15:00 forwarding rule), and the
deadline arithmetic over it: the due instant of an allowance, the forwarding
deadline, working time between instants with pauses. The durations it counts are in
:mod:`ledger.domain.durations`; the timeliness classes judged against its due
instants in :mod:`ledger.domain.deadlines`.

Pure: standard library plus the ``holidays`` data package (no I/O).
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, bisect_right
from calendar import monthrange
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from ledger.domain.durations import Duration

DEFAULT_TZ = "Asia/Ho_Chi_Minh"
_US_PER_S = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_S
_ONE_US = timedelta(microseconds=1)


@lru_cache(maxsize=512)
def _national(year: int, country: str = "VN") -> tuple[frozenset[int], frozenset[int]]:
    """A country's public holidays and make-up (weekend) workdays of one year, as ordinals
    (Vietnam's unless a rule set names another country in ``holidays``).

    From the ``holidays`` package (Labour Code Art 112 days, Tết as fixed by the
    PM, compensatory days and yearly swaps such as 2025's Sat 26 Apr worked /
    Fri 2 May off).
    """
    if country == "none":  # a rule set whose days off are all in its calendar overrides
        return frozenset(), frozenset()
    import holidays

    cal = holidays.country_holidays(country, years=year)
    days_off = frozenset(d.toordinal() for d in cal if d.year == year)
    makeup = frozenset(
        d.toordinal() for d in getattr(cal, "weekend_workdays", ()) if d.year == year
    )
    return days_off, makeup


class _Table:
    """An immutable snapshot of working days over whole years ``lo``..``hi``.

    ``offset`` keeps the count of working days before a date stable when the
    table grows backwards, so cumulative office time is an absolute number.
    ``before[i]`` is that count for day ``base + i`` (``bisect_left(ords, o) +
    offset``, looked up instead of searched: office time is read on every call).
    """

    __slots__ = ("lo", "hi", "base", "end", "flags", "reception", "ords", "offset", "before")

    def __init__(self, lo: int, hi: int, flags: bytearray, reception: bytearray, offset: int):
        self.lo, self.hi = lo, hi
        self.base = date(lo, 1, 1).toordinal()
        self.end = date(hi, 12, 31).toordinal()
        self.flags, self.reception, self.offset = flags, reception, offset
        self.ords = [self.base + i for i, f in enumerate(flags) if f]
        self.before = list(accumulate(flags, initial=offset))[:-1]


class _Days:
    """Working and reception days for one combination of weekdays and overrides.

    Shared by every agency of a rule set (only office hours differ per agency);
    grows by whole years on demand.
    """

    _MARGIN = 3  # years added beyond a requested year when growing forwards

    def __init__(
        self,
        weekdays: frozenset[int],
        days_off: frozenset[int],
        workdays: frozenset[int],
        saturday_reception: bool,
        country: str = "VN",
    ) -> None:
        self.weekdays, self.days_off, self.workdays = weekdays, days_off, workdays
        self.saturday_reception = saturday_reception
        self.country = country
        self.table: _Table | None = None
        self._lock = threading.Lock()

    def _year(self, year: int) -> tuple[bytearray, bytearray]:
        holidays_, makeup = _national(year, self.country)
        first = date(year, 1, 1).toordinal()
        n = date(year, 12, 31).toordinal() - first + 1
        flags, reception = bytearray(n), bytearray(n)
        for i in range(n):
            o = first + i
            wd = (o + 6) % 7  # date.fromordinal(o).weekday()
            if o in self.workdays:
                work = True
            elif o in self.days_off or o in holidays_:
                work = False
            else:
                work = wd in self.weekdays or o in makeup
            flags[i] = work
            reception[i] = work or (
                self.saturday_reception
                and wd == 5
                and o not in holidays_
                and o not in self.days_off
            )
        return flags, reception

    def cover(self, ordinal: int) -> _Table:
        """The table, grown if needed so that it holds ``ordinal``."""
        t = self.table
        if t is not None and t.base <= ordinal <= t.end:
            return t
        with self._lock:
            t = self.table
            year = date.fromordinal(max(1, min(ordinal, date.max.toordinal()))).year
            if t is None:
                lo, hi = year - 1, year + self._MARGIN
            elif ordinal < t.base:
                lo, hi = year, t.hi
            elif ordinal > t.end:
                lo, hi = t.lo, year + self._MARGIN
            else:
                return t
            lo, hi = max(lo, 1), min(hi, 9998)
            flags, reception = bytearray(), bytearray()
            for y in range(lo, hi + 1):
                if t is not None and t.lo <= y <= t.hi:
                    a = date(y, 1, 1).toordinal() - t.base
                    b = date(y, 12, 31).toordinal() - t.base + 1
                    flags += t.flags[a:b]
                    reception += t.reception[a:b]
                else:
                    f, r = self._year(y)
                    flags += f
                    reception += r
            offset = 0
            if t is not None:
                # working days now in the table before the old base shift the indices
                offset = t.offset - sum(flags[: t.base - date(lo, 1, 1).toordinal()])
            self.table = _Table(lo, hi, flags, reception, offset)
            return self.table


_DAYS: dict[tuple[Any, ...], _Days] = {}
_CALENDARS: dict[tuple[str, str | None], tuple[Any, BusinessCalendar]] = {}


OFFSET_TYPES = (timezone, ZoneInfo)
"""tzinfo types whose ``utcoffset`` is never None: an instant carrying one is aware
without asking (the checks here and in :mod:`ledger.domain.deadlines` test
``type(x.tzinfo) in OFFSET_TYPES`` first and call :func:`aware`, which names the bad
field, only otherwise)."""


def aware(instant: datetime, what: str) -> datetime:
    """``instant`` itself if it is an aware datetime, else a ValueError naming ``what``."""
    if not isinstance(instant, datetime):
        raise ValueError(f"{what}: expected a datetime, got {instant!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what}: naive datetime {instant.isoformat()} (an offset is required)")
    return instant


def as_tz(tz: tzinfo | str) -> tzinfo:
    """A tzinfo from itself or from its IANA name."""
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_S + t.microsecond


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    return date(y, m + 1, min(d.day, monthrange(y, m + 1)[1]))


class BusinessCalendar:
    """Working days, office hours and deadline arithmetic of one agency under one rule set.

    A day is a working day if it is a working weekday (or a national make-up
    day) and not a public holiday, unless the rule set's calendar overrides say
    otherwise. Office time is counted in integer microseconds through a
    cumulative function (office time since a fixed origin), so every count is
    two binary searches, whatever the span.
    """

    def __init__(
        self,
        tz: tzinfo | str = DEFAULT_TZ,
        office_hours: tuple[tuple[time, time], ...] = (
            (time(7, 30), time(11, 30)),
            (time(13, 30), time(17, 0)),
        ),
        working_weekdays: frozenset[int] = frozenset(range(5)),
        days_off: frozenset[date] = frozenset(),
        workdays: frozenset[date] = frozenset(),
        saturday_reception: bool = False,
        forwarding_cutoff: time = time(15, 0),
        holidays: str = "VN",
    ) -> None:
        self.tz = as_tz(tz)
        spans = tuple((_us(a), _us(b)) for a, b in office_hours)
        if (
            not spans
            or any(a >= b for a, b in spans)
            or any(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1))
        ):
            raise ValueError("office hours must be ordered, non-empty, non-overlapping spans")
        self._spans = spans
        self._day_us = sum(b - a for a, b in spans)
        self._open_us, self._close_us = spans[0][0], spans[-1][1]
        self._cutoff_us = _us(forwarding_cutoff)
        key = (
            frozenset(working_weekdays),
            frozenset(d.toordinal() for d in days_off),
            frozenset(d.toordinal() for d in workdays),
            bool(saturday_reception),
            holidays,
        )
        days = _DAYS.get(key)
        if days is None:
            days = _DAYS.setdefault(key, _Days(*key))
        self._days = days
        self._closes: dict[int, datetime] = {}
        self._dues: dict[tuple[str, int, float], datetime] = {}

    @classmethod
    def for_rules(cls, rule_set: Any, agency: str | None = None) -> BusinessCalendar:
        """The calendar of ``agency`` under ``rule_set`` (cached per rule set id and agency)."""
        key = (rule_set.id, agency)
        hit = _CALENDARS.get(key)
        if hit is not None:
            if hit[0] is rule_set:
                return hit[1]
            if hit[0] == rule_set:  # an equal copy (another RuleBook): compare it once only
                _CALENDARS[key] = (rule_set, hit[1])
                return hit[1]
        cal = cls(
            rule_set.timezone,
            rule_set.hours_for(agency),
            rule_set.working_weekdays,
            rule_set.calendar.days_off,
            rule_set.calendar.workdays,
            rule_set.saturday_reception,
            rule_set.forwarding_cutoff,
            getattr(rule_set, "holidays", "VN"),
        )
        _CALENDARS[key] = (rule_set, cal)
        return cal

    # --- days ---------------------------------------------------------------------

    @property
    def working_day_length(self) -> timedelta:
        """Office time in one working day (7h30 with the default hours)."""
        return timedelta(microseconds=self._day_us)

    def is_working_day(self, d: date) -> bool:
        o = d.toordinal()
        t = self._days.cover(o)
        return bool(t.flags[o - t.base])

    def is_reception_day(self, d: date) -> bool:
        """The desk receives dossiers: a working day, or a Saturday if the rule set says so."""
        o = d.toordinal()
        t = self._days.cover(o)
        return bool(t.reception[o - t.base])

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        return self.add_working_days(d, 1)

    def add_working_days(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d`` (before it if ``n`` < 0; ``d`` itself if 0)."""
        n = int(n)
        if n == 0:
            return d if type(d) is date else date(d.year, d.month, d.day)
        return date.fromordinal(self._add_days(d.toordinal(), n))

    def _add_days(self, o: int, n: int) -> int:
        days = self._days
        t = days.cover(o)
        while True:
            i = bisect_right(t.ords, o) + n - 1 if n > 0 else bisect_left(t.ords, o) + n
            if 0 <= i < len(t.ords):
                return t.ords[i]
            t = self._grow(t, i >= 0)

    def _grow(self, t: _Table, forwards: bool) -> _Table:
        grown = self._days.cover(t.end + 366 if forwards else t.base - 366)
        if grown is t:
            raise ValueError("date beyond the calendar's range (years 1..9998)")
        return grown

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b]; when ``b`` is before ``a``, minus those in [b, a).

        Either way the inverse of :meth:`add_working_days`.
        """
        oa, ob = a.toordinal(), b.toordinal()
        self._days.cover(oa)
        t = self._days.cover(ob)
        if ob >= oa:
            return bisect_right(t.ords, ob) - bisect_right(t.ords, oa)
        return bisect_left(t.ords, ob) - bisect_left(t.ords, oa)

    def office_start(self, d: date) -> datetime:
        """Opening of office hours on ``d`` (agency tz)."""
        return self._at(d.toordinal(), self._open_us)

    def office_end(self, d: date) -> datetime:
        """Close of office hours on ``d`` (agency tz): when a due day ends."""
        return self._at(d.toordinal(), self._close_us)

    def in_office_hours(self, instant: datetime) -> bool:
        """Whether ``instant`` is office time on a working day (open span end excluded)."""
        local = aware(instant, "instant").astimezone(self.tz)
        if not self.is_working_day(local):
            return False
        tod = self._tod(local)
        return any(a <= tod < b for a, b in self._spans)

    # --- office time ------------------------------------------------------------

    def _tod(self, local: datetime) -> int:
        return (
            (local.hour * 60 + local.minute) * 60 + local.second
        ) * _US_PER_S + local.microsecond

    def _at(self, o: int, tod: int) -> datetime:
        d = date.fromordinal(o)
        s, us = divmod(tod, _US_PER_S)
        m, s = divmod(s, 60)
        h, m = divmod(m, 60)
        return datetime(d.year, d.month, d.day, h, m, s, us, tzinfo=self.tz)

    def _close(self, o: int) -> datetime:
        """The close of office hours on day ``o``: most due instants, so one (immutable)
        object per day serves every call."""
        c = self._closes.get(o)
        if c is None:
            c = self._at(o, self._close_us)
            if len(self._closes) < 100_000:
                self._closes[o] = c
        return c

    def _cum(self, local: datetime) -> int:
        """Office time (µs) from the calendar's origin to the local instant.

        The calendar's hottest function, so the table look-up and the time of day are
        written out here: a working day's office time before ``tod`` is the part of
        each office span that lies before it.
        """
        o = local.toordinal()
        t = self._days.table
        if t is None or not t.base <= o <= t.end:
            t = self._days.cover(o)
        i = o - t.base
        x = t.before[i] * self._day_us
        if t.flags[i]:
            tod = (
                (local.hour * 60 + local.minute) * 60 + local.second
            ) * _US_PER_S + local.microsecond
            for a, b in self._spans:
                if tod <= a:
                    break
                x += (b if tod > b else tod) - a
        return x

    office_us = _cum
    """``office_us(local)``: office time (µs) from the calendar's origin to an instant already
    in :attr:`tz`; two of them subtract to :meth:`working_time` without pauses, so a caller
    that counts one instant in several spans converts and counts it once."""

    def _cum_close(self, o: int) -> int:
        """``_cum`` of the close of working day ``o`` (all of that day's office time)."""
        t = self._days.cover(o)
        assert t.flags[o - t.base], "a working day"
        return (t.before[o - t.base] + 1) * self._day_us

    def _at_cum(self, x: int, close: bool = True) -> datetime:
        """The instant at cumulative office time ``x``.

        A boundary between two office spans is the earlier span's end if ``close``
        (a count that ends there is due at the close), else the next opening.
        """
        k, r = divmod(x, self._day_us)
        if close and r == 0:
            k, r = k - 1, self._day_us
        t = self._days.table
        assert t is not None  # _cum ran first
        while not 0 <= k - t.offset < len(t.ords):
            t = self._grow(t, k - t.offset >= 0)
        o = t.ords[k - t.offset]
        for a, b in self._spans:
            if r < b - a or (close and r == b - a):
                return self._at(o, a + r)
            r -= b - a
        raise AssertionError("unreachable: r < day length")

    def working_time(
        self,
        start: datetime,
        end: datetime,
        pauses: Iterable[tuple[datetime, datetime | None]] = (),
    ) -> timedelta:
        """Office time in [start, end) minus the union of the pauses (open pause: until ``end``)."""
        if type(start) is not datetime or type(start.tzinfo) not in OFFSET_TYPES:
            aware(start, "start")
        if type(end) is not datetime or type(end.tzinfo) not in OFFSET_TYPES:
            aware(end, "end")
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        tz = self.tz
        x0, x1 = self._cum(start.astimezone(tz)), self._cum(end.astimezone(tz))
        total = x1 - x0
        if pauses:
            spans = []
            for i, (ps, pe) in enumerate(pauses):
                ps = aware(ps, f"pauses[{i}].start")
                if pe is None:
                    pe = end  # still paused (a pause opened after ``end`` counts nothing)
                elif aware(pe, f"pauses[{i}].end") < ps:
                    raise ValueError(f"pauses[{i}]: end {pe.isoformat()} is before its start")
                a, b = max(ps, start), min(pe, end)
                if a < b:
                    spans.append((self._cum(a.astimezone(tz)), self._cum(b.astimezone(tz))))
            spans.sort()
            covered, reach = 0, None
            for a, b in spans:
                if reach is None or a > reach:
                    covered += b - a
                    reach = b
                elif b > reach:
                    covered += b - reach
                    reach = b
            total -= covered
        return _ONE_US * total  # exact, and cheaper than timedelta(microseconds=total)

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant after ``amount`` of office time from ``start`` (inverse of ``working_time``).

        Landing exactly on a close gives that close, not the next opening.
        """
        if type(start) is not datetime or type(start.tzinfo) not in OFFSET_TYPES:
            aware(start, "start")
        local = start.astimezone(self.tz)
        us = amount // _ONE_US
        if us == 0:
            return local
        return self._at_cum(self._cum(local) + us)

    # --- deadlines --------------------------------------------------------------

    def due(
        self,
        received_at: datetime,
        allowance: Duration | Any,
        *,
        after_cutoff_next_day: bool = False,
    ) -> datetime:
        """The due instant of an allowance counted from a receipt (Civil Code Art 147-148).

        Working/calendar days and months: the receipt day is excluded and the
        due instant is the close of office hours on the last allowed day, a day
        off moving it to the next working day. Working hours count office time
        from the receipt (outside office hours: from the next opening).
        ``same_day``: the close of the receipt's working day (the next one after a
        day off or the close; with ``after_cutoff_next_day``, also after the
        forwarding cutoff). Fractions of a working day are that share of its
        office time, added after the whole days.
        """
        if type(received_at) is not datetime or type(received_at.tzinfo) not in OFFSET_TYPES:
            aware(received_at, "received_at")
        local = received_at.astimezone(self.tz)
        d = allowance if type(allowance) is Duration else Duration.parse(allowance)
        unit, value = d.unit, d.value
        if unit == "working_days":
            whole = int(value)
            extra = round((value - whole) * self._day_us)
            if whole == 0:
                # nothing to count: the receipt itself, or the next opening after it
                return self._at_cum(self._cum(local) + extra, close=extra > 0)
            # From here on the due instant depends on the receipt's day only.
            key = (unit, local.toordinal(), value)
            due = self._dues.get(key)
            if due is None:
                o = self._add_days(key[1], whole)
                due = self._close(o) if extra == 0 else self._at_cum(self._cum_close(o) + extra)
                self._remember(key, due)
            return due
        if unit == "working_hours":
            us = round(value * 3600 * _US_PER_S)
            return self._at_cum(self._cum(local) + us, close=us > 0)
        if unit in ("calendar_days", "months"):
            n = math.ceil(value)
            if n > 0:  # the due instant depends on the receipt's day only
                key = (unit, local.toordinal(), n)
                due = self._dues.get(key)
                if due is not None:
                    return due
            if unit == "calendar_days":
                o = local.toordinal() + n
            else:
                o = _add_months(local.date(), n).toordinal()
            t = self._days.cover(o)
            if not t.flags[o - t.base] or (n == 0 and self._tod(local) > self._close_us):
                o = self._add_days(o, 1)
            due = self._close(o)
            if n > 0:
                self._remember(key, due)
            return due
        if unit == "same_day":
            o = local.toordinal()
            t = self._days.cover(o)
            tod = self._tod(local)
            if (
                not t.flags[o - t.base]
                or tod > self._close_us
                or (after_cutoff_next_day and tod > self._cutoff_us)
            ):
                o = self._add_days(o, 1)
            return self._close(o)
        return (local + d.as_timedelta()).astimezone(self.tz)

    def _remember(self, key: tuple[str, int, float], due: datetime) -> None:
        """Keep a due instant that depends on the receipt's day only (bounded)."""
        if len(self._dues) >= 20_000:  # the recent weeks' days serve nearly every call
            self._dues.clear()
        self._dues[key] = due

    def forwarding_deadline(self, received_at: datetime, channel: str) -> datetime:
        """When a received dossier must be forwarded (Art 18, the 15:00 rule).

        Online: at once. Paper (direct, postal): by the close of the same working
        day, or at the opening of the next one if received after the cutoff or
        on a day that is not a working day.
        """
        local = aware(received_at, "received_at").astimezone(self.tz)
        if channel in ("online", "2"):
            return local
        o = local.toordinal()
        t = self._days.cover(o)
        if t.flags[o - t.base] and self._tod(local) <= self._cutoff_us:
            return self._close(o)
        return self._at(self._add_days(o, 1), self._open_us)
