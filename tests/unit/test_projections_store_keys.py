"""``utc_key``: the sortable UTC text of ``last_occurred_utc`` must never change its bytes
(the read models' checksum covers it), whatever shortcut computes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from projections.store import utc_key

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)
)
def test_utc_key_is_the_strftime_text(instant: datetime) -> None:
    expected = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert utc_key(instant.isoformat()) == expected


def test_utc_key_sorts_as_time() -> None:
    a, b = "2025-09-01T10:00:04+07:00", "2025-09-01T03:00:05+00:00"
    assert utc_key(a) == "2025-09-01T03:00:04.000000Z" < utc_key(b)
