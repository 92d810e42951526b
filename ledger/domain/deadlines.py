"""Timeliness: how a dossier or step stands against its deadline.

The classes of a finished one (EARLY / ON_TIME / LATE) and of an open one
(WITHIN_DEADLINE / OVERDUE), the instant an open one turns overdue, and the
deadline of record (the receipt slip's appointment, else the computed due). One
definition, shared by the read models, the streams and the simulator; the due
instants themselves come from :mod:`ledger.domain.working_calendar`.

Pure: standard library only.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

from ledger.domain.working_calendar import DEFAULT_TZ, OFFSET_TYPES, as_tz, aware

FINISHED = ("EARLY", "ON_TIME", "LATE")
OPEN = ("WITHIN_DEADLINE", "OVERDUE")


def _key(instant: datetime, granularity: str, tz: tzinfo) -> date | datetime:
    if granularity == "date":
        return instant.astimezone(tz).date()
    if granularity == "minutes":
        return instant.astimezone(tz).replace(second=0, microsecond=0)
    raise ValueError(f"granularity: one of date, minutes (got {granularity!r})")


def _order(a: datetime, b: datetime, granularity: str, tz: tzinfo | str) -> int:
    """-1, 0 or 1 as ``a`` is before, equal to or after ``b`` at the granularity."""
    z = as_tz(tz)
    if (
        granularity == "date"
        and type(a) is datetime
        and type(b) is datetime
        and type(a.tzinfo) in OFFSET_TYPES
        and type(b.tzinfo) in OFFSET_TYPES
    ):  # aware for sure: local dates compare as their ordinals
        ka, kb = a.astimezone(z).toordinal(), b.astimezone(z).toordinal()
        return (ka > kb) - (ka < kb)
    ka = _key(aware(a, "end"), granularity, z)
    kb = _key(aware(b, "due"), granularity, z)
    return (ka > kb) - (ka < kb)


def classify_finished(
    end: datetime, due: datetime, granularity: str = "date", tz: tzinfo | str = DEFAULT_TZ
) -> str:
    """EARLY / ON_TIME / LATE of a finished dossier or step (TT01 index 1).

    ``date`` compares local dates; ``minutes`` compares instants truncated to the minute.
    """
    return FINISHED[_order(end, due, granularity, tz) + 1]


def classify_open(
    now: datetime, due: datetime, granularity: str = "date", tz: tzinfo | str = DEFAULT_TZ
) -> str:
    """WITHIN_DEADLINE while ``now`` <= due (at the granularity), else OVERDUE."""
    return OPEN[_order(now, due, granularity, tz) > 0]


def overdue_from(
    due: datetime, granularity: str = "date", tz: tzinfo | str = DEFAULT_TZ
) -> datetime:
    """The first instant at which an open dossier due at ``due`` is OVERDUE (``classify_open``).

    ``date``: the local midnight after the due date; ``minutes``: the minute after the
    due's minute. A stream sets its timer here, so that "overdue" changes exactly when
    the watermark passes this instant, and never needs a second definition.
    """
    z = as_tz(tz)
    local = aware(due, "due").astimezone(z)
    if granularity == "date":
        nxt = local.date() + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=z)
    if granularity == "minutes":
        return local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    raise ValueError(f"granularity: one of date, minutes (got {granularity!r})")


def deadline_of_record(
    appointment_at: datetime | str | None, computed_due: datetime | None
) -> tuple[datetime | None, timedelta | None]:
    """The deadline a dossier is judged by, and how far the slip's appointment is from the law.

    The appointment printed on the receipt slip (``appointment_at``) wins when
    present; the computed due stays beside it, and the difference
    (appointment - computed) shows a slip promising more (positive) or less
    time than the allowance. The difference is None when either is missing.
    """
    if isinstance(appointment_at, str):
        appointment_at = datetime.fromisoformat(appointment_at)
    if appointment_at is None:
        return computed_due, None
    appointment_at = aware(appointment_at, "appointment_at")
    if computed_due is None:
        return appointment_at, None
    return appointment_at, appointment_at - aware(computed_due, "computed_due")
