"""Business time for the streams: the watermark.

Every stream figure is judged against *now*, and now is the watermark: the
latest business time (``occurred_at``) seen, less an allowed lateness. It only
moves forward. A runner may push it further with an explicit instant (``--now``
at the end of a replay, a tick record, or the wall clock in ``--follow``), so an
idle office still sees its deadlines pass. It never moves back, and it is never
the wall clock in a replay.

Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DEFAULT_LATENESS = timedelta(minutes=10)
"""How far behind the latest business time an event may arrive and still be on time."""
DEFAULT_GRACE = timedelta(days=1)
"""How long after its end a daily window stays provisional (open to late events)."""


@dataclass
class Watermark:
    """The latest business time seen (``seen``) and the watermark derived from it."""

    lateness: timedelta = DEFAULT_LATENESS
    seen: datetime | None = None
    pushed: datetime | None = None
    """The furthest explicit advance (``--now``, a tick, the wall clock)."""

    def observe(self, occurred_at: datetime) -> None:
        if self.seen is None or occurred_at > self.seen:
            self.seen = occurred_at

    def push(self, instant: datetime) -> None:
        """Advance to at least ``instant`` (never backwards)."""
        if self.pushed is None or instant > self.pushed:
            self.pushed = instant

    @property
    def current(self) -> datetime | None:
        """The watermark: what every timer and window is judged against."""
        by_events = None if self.seen is None else self.seen - self.lateness
        if self.pushed is None:
            return by_events
        if by_events is None:
            return self.pushed
        return max(by_events, self.pushed)

    def to_json(self) -> dict[str, Any]:
        return {
            "lateness_s": self.lateness.total_seconds(),
            "seen": None if self.seen is None else self.seen.isoformat(),
            "pushed": None if self.pushed is None else self.pushed.isoformat(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any] | None, lateness: timedelta) -> Watermark:
        if not obj:
            return cls(lateness)
        parse = datetime.fromisoformat
        return cls(
            lateness,
            None if obj.get("seen") is None else parse(obj["seen"]),
            None if obj.get("pushed") is None else parse(obj["pushed"]),
        )
