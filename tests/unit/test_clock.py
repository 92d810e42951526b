"""The working-day clock: durations, calendar, due instants, office time, timeliness.

``ledger.domain.durations``, ``working_calendar`` and ``deadlines`` are tested together:
most answers need all three."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.deadlines import classify_finished, classify_open, deadline_of_record
from ledger.domain.durations import Duration
from ledger.domain.rules import CalendarOverrides, build_rules, load_rules
from ledger.domain.working_calendar import BusinessCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
BOOK = load_rules()
RULES = BOOK.latest
CAL = BusinessCalendar.for_rules(RULES)
WD = "working_days"


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN)


def in_office(cal: BusinessCalendar, instant: datetime) -> bool:
    """On a working day, between an opening and a close (both included)."""
    local = instant.astimezone(cal.tz)
    return cal.is_working_day(local.date()) and any(
        a <= local.time() <= b for a, b in RULES.hours_for(None)
    )


# --- calendar ----------------------------------------------------------------------


def test_tet_2026_is_off_and_due_skips_it() -> None:
    for day in range(16, 21):
        assert not CAL.is_working_day(date(2026, 2, day))
    assert CAL.is_working_day(date(2026, 2, 13))
    assert CAL.due(at(2026, 2, 13, 10), Duration(1, WD)) == at(2026, 2, 23, 17)
    assert CAL.working_time(at(2026, 2, 14), at(2026, 2, 23)) == timedelta(0)


def test_30_april_and_1_may() -> None:
    assert not CAL.is_working_day(date(2026, 4, 30))
    assert not CAL.is_working_day(date(2026, 5, 1))
    # Wed 29 Apr 2026: Thu and Fri are holidays, then the weekend
    assert CAL.due(at(2026, 4, 29, 9), Duration(1, WD)) == at(2026, 5, 4, 17)


def test_2025_swap_saturday_worked_friday_off() -> None:
    assert CAL.is_working_day(date(2025, 4, 26))  # Saturday, make-up day
    assert not CAL.is_working_day(date(2025, 5, 2))  # Friday, swapped off
    assert CAL.due(at(2025, 4, 25, 10), Duration(1, WD)) == at(2025, 4, 26, 17)
    assert CAL.due(at(2025, 4, 29, 10), Duration(1, WD)) == at(2025, 5, 5, 17)
    assert CAL.working_days_between(date(2025, 4, 24), date(2025, 5, 5)) == 5


def test_swap_comes_from_the_holidays_package_without_overrides() -> None:
    bare = BusinessCalendar()
    assert bare.is_working_day(date(2025, 4, 26))
    assert not bare.is_working_day(date(2025, 5, 2))


def test_national_day_2_september_and_adjacent_day() -> None:
    assert not CAL.is_working_day(date(2025, 9, 1))
    assert not CAL.is_working_day(date(2025, 9, 2))
    assert CAL.due(at(2025, 8, 29, 10), Duration(1, WD)) == at(2025, 9, 3, 17)


def test_receipt_day_is_excluded_even_before_opening() -> None:
    assert CAL.due(at(2025, 3, 10, 6), Duration(1, WD)) == at(2025, 3, 11, 17)
    assert CAL.due(at(2025, 3, 10, 23), Duration(3, WD)) == at(2025, 3, 13, 17)
    # received on a Saturday: Monday is the first working day after it
    assert CAL.due(at(2025, 3, 8, 9), Duration(1, WD)) == at(2025, 3, 10, 17)


def test_working_days_between_and_next_working_day() -> None:
    assert CAL.next_working_day(date(2025, 3, 7)) == date(2025, 3, 10)
    assert CAL.working_days_between(date(2025, 3, 7), date(2025, 3, 10)) == 1
    assert CAL.working_days_between(date(2025, 3, 10), date(2025, 3, 7)) == -1
    assert CAL.add_working_days(date(2025, 3, 10), -1) == date(2025, 3, 7)
    assert CAL.add_working_days(date(2025, 3, 10), 0) == date(2025, 3, 10)


def test_far_dates_grow_the_table() -> None:
    cal = BusinessCalendar(days_off=frozenset({date(2090, 1, 2)}))  # a table of its own
    assert cal.working_days_between(date(2024, 12, 31), date(2025, 1, 1)) == 0  # 1 Jan holiday
    before = cal.working_time(at(2025, 1, 2), at(2025, 3, 1))
    assert cal.add_working_days(date(2060, 1, 1), 1) > date(2060, 1, 1)
    assert cal.is_working_day(date(1995, 3, 1))  # a Wednesday
    # cumulative office time stays consistent after growing backwards
    assert cal.working_time(at(2025, 1, 2), at(2025, 3, 1)) == before
    assert cal.working_time(at(1995, 3, 1), at(1995, 3, 2)) == timedelta(hours=7.5)
    assert cal.working_time(at(1995, 3, 1), at(2060, 3, 1)) > timedelta(days=4000)


# --- office time -------------------------------------------------------------------


def test_working_hours_across_lunch_break() -> None:
    assert CAL.due(at(2025, 3, 10, 10, 30), Duration(2, "working_hours")) == at(2025, 3, 10, 14, 30)
    assert CAL.working_time(at(2025, 3, 10, 10, 30), at(2025, 3, 10, 14, 30)) == timedelta(hours=2)
    # a count ending exactly at the lunch close is due at 11:30, not at 13:30
    assert CAL.due(at(2025, 3, 10, 7, 30), Duration(4, "working_hours")) == at(2025, 3, 10, 11, 30)


def test_working_hours_across_a_weekend() -> None:
    assert CAL.due(at(2025, 3, 7, 16), Duration(2, "working_hours")) == at(2025, 3, 10, 8, 30)
    assert CAL.working_time(at(2025, 3, 7, 16), at(2025, 3, 10, 8, 30)) == timedelta(hours=2)


def test_working_hours_counted_from_next_opening() -> None:
    assert CAL.due(at(2025, 3, 10, 19), Duration(1, "working_hours")) == at(2025, 3, 11, 8, 30)
    assert CAL.due(at(2025, 3, 10, 12), Duration(1, "working_hours")) == at(2025, 3, 10, 14, 30)


def test_working_day_length_and_full_day() -> None:
    assert CAL.working_day_length == timedelta(hours=7, minutes=30)
    assert CAL.working_time(at(2025, 3, 10), at(2025, 3, 11)) == CAL.working_day_length


def test_pauses_are_subtracted_as_a_union() -> None:
    mon, fri_close = at(2025, 3, 10, 7, 30), at(2025, 3, 14, 17)
    assert CAL.working_time(mon, fri_close) == timedelta(hours=37.5)
    pauses = [
        (at(2025, 3, 11, 7, 30), at(2025, 3, 12, 7, 30)),  # all of Tuesday
        (at(2025, 3, 11, 13, 30), at(2025, 3, 12, 11, 30)),  # overlaps, adds Wed morning
        (at(2025, 3, 1), at(2025, 3, 10, 9, 30)),  # starts before start: 2h counted
    ]
    assert CAL.working_time(mon, fri_close, pauses) == timedelta(hours=37.5 - 7.5 - 4 - 2)


def test_open_pause_lasts_until_end() -> None:
    mon, fri_close = at(2025, 3, 10, 7, 30), at(2025, 3, 14, 17)
    paused = CAL.working_time(mon, fri_close, [(at(2025, 3, 13, 13, 30), None)])
    assert paused == timedelta(hours=37.5 - 3.5 - 7.5)


def test_bad_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        CAL.due(datetime(2025, 3, 10, 9), Duration(1, WD))
    with pytest.raises(ValueError, match="naive"):
        CAL.working_time(datetime(2025, 3, 10, 9), at(2025, 3, 11))
    with pytest.raises(ValueError, match="before start"):
        CAL.working_time(at(2025, 3, 11), at(2025, 3, 10))
    with pytest.raises(ValueError, match=r"pauses\[0\]"):
        CAL.working_time(
            at(2025, 3, 10), at(2025, 3, 11), [(at(2025, 3, 10, 12), at(2025, 3, 10, 9))]
        )


def test_results_are_in_agency_tz() -> None:
    utc_receipt = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)  # 10:00 in Hanoi
    due = CAL.due(utc_receipt, Duration(2, "working_hours"))
    assert due.tzinfo == VN and due == at(2025, 3, 10, 14)
    # 20:00Z on Sunday 9 March is already Monday 03:00 in Hanoi
    assert CAL.due(datetime(2025, 3, 9, 20, tzinfo=UTC), Duration(1, WD)) == at(2025, 3, 11, 17)


# --- other units -------------------------------------------------------------------


def test_calendar_days_ending_on_sunday_move_to_monday() -> None:
    assert CAL.due(at(2025, 3, 3, 10), Duration(6, "calendar_days")) == at(2025, 3, 10, 17)
    assert CAL.due(at(2025, 3, 3, 10), Duration(4, "calendar_days")) == at(2025, 3, 7, 17)


def test_months_clamp_to_month_end() -> None:
    assert CAL.due(at(2025, 1, 31, 10), Duration(1, "months")) == at(2025, 2, 28, 17)
    assert CAL.due(at(2024, 1, 31, 10), Duration(1, "months")) == at(2024, 2, 29, 17)
    # 31 May 2025 is a Saturday: moved to Monday 2 June
    assert CAL.due(at(2025, 3, 31, 10), Duration(2, "months")) == at(2025, 6, 2, 17)


def test_same_day_and_the_15h_rule() -> None:
    mon = (2025, 3, 10)
    assert CAL.due(at(*mon, 15, 30), Duration(0, "same_day")) == at(*mon, 17)
    next_day = CAL.due(at(*mon, 15, 30), Duration(0, "same_day"), after_cutoff_next_day=True)
    assert next_day == at(2025, 3, 11, 17)
    before = CAL.due(at(*mon, 14, 59), Duration(0, "same_day"), after_cutoff_next_day=True)
    assert before == at(*mon, 17)
    assert CAL.due(at(*mon, 17, 30), Duration(0, "same_day")) == at(2025, 3, 11, 17)
    assert CAL.due(at(2025, 3, 8, 9), Duration(0, "same_day")) == at(*mon, 17)


def test_fractional_working_days() -> None:
    assert CAL.due(at(2025, 3, 10, 10), Duration(0.5, WD)) == at(2025, 3, 10, 15, 45)
    assert CAL.due(at(2025, 3, 10, 10), Duration(1.5, WD)) == at(2025, 3, 12, 11, 15)


def test_elapsed_units_and_parsed_allowances() -> None:
    assert CAL.due(at(2025, 3, 8, 10), Duration.parse("24h")) == at(2025, 3, 9, 10)
    assert CAL.due(at(2025, 3, 10, 10), {"value": 3, "unit": WD}) == at(2025, 3, 13, 17)


def test_forwarding_deadline() -> None:
    assert CAL.forwarding_deadline(at(2025, 3, 10, 14), "direct") == at(2025, 3, 10, 17)
    assert CAL.forwarding_deadline(at(2025, 3, 10, 15, 1), "postal") == at(2025, 3, 11, 7, 30)
    assert CAL.forwarding_deadline(at(2025, 3, 8, 9), "direct") == at(2025, 3, 10, 7, 30)
    assert CAL.forwarding_deadline(at(2025, 3, 10, 16), "online") == at(2025, 3, 10, 16)


# --- rule set: overrides, reception, agencies --------------------------------------


def test_province_override_adds_a_day_off() -> None:
    overrides = yaml.safe_load(
        """
        days_off:
          - {date: 2025-03-12, name: "Provincial anniversary"}
        workdays: []
        """
    )
    raw = {
        "rule_sets": [{"id": "PROV-X/v1", "legal_basis": "test", "effective_from": "2025-01-01"}]
    }
    rs = build_rules(raw, overrides).get("PROV-X/v1")
    cal = BusinessCalendar.for_rules(rs)
    assert not cal.is_working_day(date(2025, 3, 12))
    assert cal.due(at(2025, 3, 11, 10), Duration(1, WD)) == at(2025, 3, 13, 17)
    assert CAL.due(at(2025, 3, 11, 10), Duration(1, WD)) == at(2025, 3, 12, 17)


def test_override_workday_and_cache_follows_rule_set_content() -> None:
    a = dataclasses.replace(RULES, id="CACHE-T")
    cal_a = BusinessCalendar.for_rules(a)
    assert BusinessCalendar.for_rules(a) is cal_a
    b = dataclasses.replace(a, calendar=CalendarOverrides(workdays=frozenset({date(2025, 3, 8)})))
    assert BusinessCalendar.for_rules(b).is_working_day(date(2025, 3, 8))
    assert not cal_a.is_working_day(date(2025, 3, 8))


def test_saturday_reception_is_a_separate_calendar() -> None:
    rs = dataclasses.replace(RULES, id="SAT-T", saturday_reception=True)
    cal = BusinessCalendar.for_rules(rs)
    assert cal.is_reception_day(date(2025, 3, 8)) and not cal.is_working_day(date(2025, 3, 8))
    assert not cal.is_reception_day(date(2025, 3, 9))  # Sunday
    assert not cal.is_reception_day(date(2025, 2, 1))  # Saturday in Tết
    assert not CAL.is_reception_day(date(2025, 3, 8))


def test_agency_office_hours() -> None:
    rs = dataclasses.replace(
        RULES, id="HOURS-T", agency_office_hours={"W1": ((time(8), time(12)), (time(13), time(17)))}
    )
    cal = BusinessCalendar.for_rules(rs, "W1")
    assert cal.working_day_length == timedelta(hours=8)
    assert cal.due(at(2025, 3, 10, 11), Duration(2, "working_hours")) == at(2025, 3, 10, 14)
    assert BusinessCalendar.for_rules(rs, "other").working_day_length == timedelta(hours=7.5)


# --- timeliness ----------------------------------------------------------------------


def test_classify_finished_by_date_and_minutes() -> None:
    due = at(2025, 3, 10, 17)
    assert classify_finished(at(2025, 3, 9, 9), due) == "EARLY"
    assert classify_finished(at(2025, 3, 10, 20), due) == "ON_TIME"
    assert classify_finished(at(2025, 3, 10, 20), due, "minutes") == "LATE"
    assert classify_finished(at(2025, 3, 10, 16, 59), due, "minutes") == "EARLY"
    assert classify_finished(due + timedelta(seconds=59), due, "minutes") == "ON_TIME"
    # 17:30Z is 00:30 next day in Hanoi: late by date
    assert classify_finished(datetime(2025, 3, 10, 17, 30, tzinfo=UTC), due) == "LATE"
    assert classify_finished(at(2025, 3, 11, 1), due, tz="UTC") == "ON_TIME"


def test_classify_open() -> None:
    due = at(2025, 3, 10, 17)
    assert classify_open(at(2025, 3, 10, 23), due) == "WITHIN_DEADLINE"
    assert classify_open(at(2025, 3, 10, 23), due, "minutes") == "OVERDUE"
    assert classify_open(due, due, "minutes") == "WITHIN_DEADLINE"
    assert classify_open(at(2025, 3, 11), due) == "OVERDUE"
    with pytest.raises(ValueError, match="granularity"):
        classify_open(due, due, "hours")
    with pytest.raises(ValueError, match="naive"):
        classify_open(datetime(2025, 3, 10), due)


def test_deadline_of_record() -> None:
    computed = at(2025, 3, 13, 17)
    assert deadline_of_record(None, computed) == (computed, None)
    slip = at(2025, 3, 14, 17)
    assert deadline_of_record(slip, computed) == (slip, timedelta(days=1))
    assert deadline_of_record("2025-03-12T17:00:00+07:00", computed) == (
        at(2025, 3, 12, 17),
        timedelta(days=-1),
    )
    with pytest.raises(ValueError, match="appointment_at"):
        deadline_of_record(datetime(2025, 3, 12), computed)


# --- properties ----------------------------------------------------------------------

dates = st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))
instants = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([VN, UTC]),
)
allowances = st.one_of(
    st.builds(Duration, st.integers(0, 40).map(lambda n: n / 2), st.just(WD)),
    st.builds(Duration, st.integers(0, 200).map(lambda n: n / 4), st.just("working_hours")),
    st.builds(Duration, st.integers(0, 90), st.just("calendar_days")),
    st.builds(Duration, st.integers(0, 12), st.just("months")),
    st.builds(Duration, st.just(0), st.just("same_day")),
)


@given(dates, st.integers(-60, 60))
def test_add_then_measure_working_days(d: date, n: int) -> None:
    assert CAL.working_days_between(d, CAL.add_working_days(d, n)) == n


@given(instants, st.integers(0, 200 * 3600 * 10**6))
def test_add_then_measure_working_time(start: datetime, us: int) -> None:
    amount = timedelta(microseconds=us)
    assert CAL.working_time(start, CAL.add_working_time(start, amount)) == amount


@given(dates)
def test_only_working_days_hold_office_time(d: date) -> None:
    midnight = datetime(d.year, d.month, d.day, tzinfo=VN)
    spent = CAL.working_time(midnight, midnight + timedelta(days=1))
    assert spent == (CAL.working_day_length if CAL.is_working_day(d) else timedelta(0))
    if d.weekday() == 6 or d in _HOLIDAYS:
        assert spent == timedelta(0)


_HOLIDAYS = {date(2025, 1, 1), date(2025, 1, 29), date(2025, 9, 2), date(2026, 2, 17)}


@given(instants, instants, allowances)
def test_due_is_monotone_in_receipt(r1: datetime, r2: datetime, allowance: Duration) -> None:
    r1, r2 = min(r1, r2), max(r1, r2)
    assert CAL.due(r1, allowance) <= CAL.due(r2, allowance)


@given(instants, allowances, st.integers(0, 20))
def test_due_is_monotone_in_allowance(r: datetime, allowance: Duration, more: int) -> None:
    step = 0.25 if allowance.unit != "same_day" else 0
    longer = Duration(allowance.value + more * step, allowance.unit)
    assert CAL.due(r, allowance) <= CAL.due(r, longer)


@settings(max_examples=200)
@given(instants, allowances, st.booleans())
def test_due_falls_on_a_working_day_in_office_hours(
    r: datetime, allowance: Duration, cutoff: bool
) -> None:
    due = CAL.due(r, allowance, after_cutoff_next_day=cutoff)
    assert due.tzinfo == VN
    assert in_office(CAL, due)
    assert due >= r or allowance.value == 0 and allowance.unit == WD


@given(instants, instants, st.lists(st.tuples(instants, st.none() | instants), max_size=4))
def test_pauses_subtract_their_merged_office_time(
    a: datetime, b: datetime, raw: list[tuple[datetime, datetime | None]]
) -> None:
    start, end = min(a, b), max(a, b)
    pauses = [(p, q) if q is None else (min(p, q), max(p, q)) for p, q in raw]
    clipped = sorted(
        (max(p, start), min(end if q is None else q, end))
        for p, q in pauses
        if max(p, start) < min(end if q is None else q, end)
    )
    merged: list[list[datetime]] = []
    for p, q in clipped:
        if merged and p <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], q)
        else:
            merged.append([p, q])
    expected = CAL.working_time(start, end) - sum(
        (CAL.working_time(p, q) for p, q in merged), timedelta(0)
    )
    assert CAL.working_time(start, end, pauses) == expected >= timedelta(0)


# --- fast paths: the same answers whatever the instant carries -------------------------

PLUS7 = timezone(timedelta(hours=7))
BERLIN = ZoneInfo("Europe/Berlin")
zones_in = st.sampled_from([VN, UTC, PLUS7, timezone(timedelta(hours=-3, minutes=-30)), BERLIN])


@given(instants, instants, zones_in, zones_in, allowances)
def test_results_do_not_depend_on_the_input_offset(
    a: datetime, b: datetime, za: tzinfo, zb: tzinfo, allowance: Duration
) -> None:
    """Parsed events carry a fixed +07:00, not the calendar's ZoneInfo: same instants,
    same answers, and due instants always in the calendar's zone."""
    start, end = min(a, b), max(a, b)
    sa, eb = start.astimezone(za), end.astimezone(zb)
    assert CAL.working_time(sa, eb) == CAL.working_time(start, end)
    due = CAL.due(sa, allowance)
    assert due.isoformat() == CAL.due(start, allowance).isoformat()
    assert due.tzinfo is CAL.tz
    assert CAL.add_working_time(sa, timedelta(hours=3)) == CAL.add_working_time(
        start, timedelta(hours=3)
    )
    for g in ("date", "minutes"):
        assert classify_finished(sa, due, g) == classify_finished(start, due, g)
        assert classify_open(eb, due, g) == classify_open(end, due, g)


def test_due_depending_on_the_day_only_is_shared_but_not_across_times_that_matter() -> None:
    morning, evening = at(2025, 9, 8, 8), at(2025, 9, 8, 18)  # Monday, before and after hours
    five = Duration(5, WD)
    assert CAL.due(morning, five) is CAL.due(evening.astimezone(UTC), five)
    assert CAL.due(morning, five) == at(2025, 9, 15, 17)
    assert CAL.due(evening, Duration(2.5, WD)) == at(2025, 9, 11, 11, 15)
    # zero calendar days: a receipt after the close moves to the next day, one before it not
    zero = Duration(0, "calendar_days")
    assert CAL.due(morning, zero) == at(2025, 9, 8, 17)
    assert CAL.due(evening, zero) == at(2025, 9, 9, 17)
    one = Duration(1, "calendar_days")
    assert CAL.due(evening, one) == CAL.due(morning, one) == at(2025, 9, 9, 17)


def test_a_zone_with_daylight_saving_counts_wall_clock_office_hours() -> None:
    cal = BusinessCalendar(BERLIN)
    friday = datetime(2025, 3, 28, 12, tzinfo=UTC)  # 13:00 in Berlin (CET)
    monday = datetime(2025, 3, 31, 8, tzinfo=UTC)  # 10:00 in Berlin (CEST)
    assert cal.working_time(friday, monday) == timedelta(hours=3, minutes=30 + 150)
    due = cal.due(friday, Duration(1, WD))
    assert due.isoformat() == "2025-03-31T17:00:00+02:00"
    assert cal.due(friday.astimezone(PLUS7), Duration(1, WD)) is due


def test_bad_instants_are_refused_on_every_fast_path() -> None:
    naive = datetime(2025, 9, 1, 9)
    with pytest.raises(ValueError, match="received_at: naive"):
        CAL.due(naive, Duration(1, WD))
    with pytest.raises(ValueError, match="start: naive"):
        CAL.add_working_time(naive, timedelta(hours=1))
    with pytest.raises(ValueError, match="end: naive"):
        CAL.working_time(at(2025, 9, 1, 9), naive)
    with pytest.raises(ValueError, match="end: expected a datetime"):
        classify_finished(date(2025, 9, 1), at(2025, 9, 1, 9))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="due: naive"):
        classify_open(at(2025, 9, 1, 9), naive)
