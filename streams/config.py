"""Parameters of the stream processors that no rule set carries (named, with defaults).

Rule parameters (office hours, apology lead, supplement mode, ...) come from the
rule set pinned at each dossier's receipt; these are the streams' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from streams.signals import SignalConfig
from streams.watermark import DEFAULT_GRACE, DEFAULT_LATENESS


@dataclass(frozen=True)
class AlertLevel:
    """A deadline alert: fired when ``share`` of the dossier's working time is used."""

    name: str
    share: float
    recipients: tuple[str, ...]
    """Roles told: ``official`` (the holder), ``head`` (head of the holder's unit),
    ``inspector`` (the agency's inspector)."""


DEFAULT_LEVELS = (
    AlertLevel("half", 0.5, ("official",)),
    AlertLevel("three_quarters", 0.75, ("official", "head")),
    AlertLevel("due", 1.0, ("official", "head", "inspector")),
)


@dataclass(frozen=True)
class StreamConfig:
    lateness: timedelta = DEFAULT_LATENESS
    """Allowed lateness: the watermark trails the latest business time by this much."""
    grace: timedelta = DEFAULT_GRACE
    """A daily window is final once the watermark passes its end plus this."""
    levels: tuple[AlertLevel, ...] = DEFAULT_LEVELS
    replay_horizon: timedelta = timedelta(hours=24)
    """An alert fired more than this before the reference instant (the wall clock, or
    ``--now``) is marked ``replayed``: recorded, not delivered unless asked."""
    retention: timedelta = timedelta(days=90)
    """How long a finished dossier's state is kept for late feedback (then dropped)."""
    rolling_days: int = 30
    low_rate_threshold: float = 0.95
    """An agency's or procedure's rolling on-time rate below this raises an alert (§8.14)."""
    low_rate_min_resolved: int = 20
    """... when at least this many dossiers were resolved in the window."""
    signals: SignalConfig = field(default_factory=SignalConfig)
