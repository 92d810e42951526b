"""Parameters of the stream processors that no rule set carries (named, with defaults).

Rule parameters (office hours, apology lead, supplement mode, ...) come from the
rule set pinned at each dossier's receipt; these are the streams' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ledger.domain.watermark import DEFAULT_GRACE, DEFAULT_LATENESS
from streams.signals import SignalConfig
from streams.subscriptions import SubscriptionError, seconds


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
    retention: timedelta = timedelta(days=14)
    """How long a finished dossier's state is kept for late feedback, then dropped, so
    memory holds the open dossiers and two weeks of finished ones, not the log. A later
    event of the dossier is counted (``ignored``), not applied."""
    rolling_days: int = 30
    low_rate_threshold: float = 0.95
    """An agency's or procedure's rolling on-time rate below this raises an alert (§8.14)."""
    low_rate_min_resolved: int = 20
    """... when at least this many dossiers were resolved in the window."""
    signals: SignalConfig = field(default_factory=SignalConfig)


class ConfigError(ValueError):
    """A streams configuration file is malformed; the message names the key."""


ROLES = ("official", "head", "inspector")


def load_config(path: Path) -> StreamConfig:
    """A :class:`StreamConfig` from a TOML file's ``[streams]`` table::

        [streams]
        lateness = "10m"            # allowed lateness of events
        grace = "1d"                # a day's window is final this long after its end
        replay_horizon = "24h"      # alerts older than this when fired are "replayed"
        low_rate_threshold = 0.95   # agency/procedure rolling on-time rate alert
        low_rate_min_resolved = 20
        [[streams.level]]           # deadline alert levels (replace the defaults)
        name = "half"
        share = 0.5
        recipients = ["official"]

    Every runner of one deployment must read the same file (parity).
    """
    import tomllib

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    raw = doc.get("streams", {})
    known = {
        "lateness",
        "grace",
        "replay_horizon",
        "low_rate_threshold",
        "low_rate_min_resolved",
        "level",
    }
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"{path}: [streams]: unknown key {key!r} (known: {', '.join(sorted(known))})"
            )
    out: dict[str, Any] = {}
    try:
        for key in ("lateness", "grace", "replay_horizon"):
            if key in raw:
                out[key] = timedelta(seconds=seconds(raw[key], f"streams.{key}"))
    except SubscriptionError as e:
        raise ConfigError(f"{path}: {e}") from None
    if "low_rate_threshold" in raw:
        value = raw["low_rate_threshold"]
        if not isinstance(value, int | float) or not 0 < value <= 1:
            raise ConfigError(f"{path}: streams.low_rate_threshold must be a number in (0, 1]")
        out["low_rate_threshold"] = float(value)
    if "low_rate_min_resolved" in raw:
        value = raw["low_rate_min_resolved"]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{path}: streams.low_rate_min_resolved must be a positive integer")
        out["low_rate_min_resolved"] = value
    if "level" in raw:
        levels = []
        for i, lv in enumerate(raw["level"], 1):
            where = f"{path}: streams.level[{i}]"
            name, share, recipients = lv.get("name"), lv.get("share"), lv.get("recipients", [])
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}: 'name' is required")
            if not isinstance(share, int | float) or not 0 < share <= 1:
                raise ConfigError(f"{where}: 'share' must be a number in (0, 1]")
            bad = [r for r in recipients if r not in ROLES]
            if bad or not isinstance(recipients, list):
                raise ConfigError(
                    f"{where}: recipients must be among {', '.join(ROLES)} (got {bad or recipients!r})"
                )
            levels.append(AlertLevel(name, float(share), tuple(recipients)))
        if len({lv.name for lv in levels}) != len(levels):
            raise ConfigError(f"{path}: streams.level: names must be unique")
        out["levels"] = tuple(sorted(levels, key=lambda lv: lv.share))
    return StreamConfig(**out)


def config_for(data_dir: Path, path: Path | None = None) -> StreamConfig:
    """``path``, else ``DATA_DIR/streams.toml`` when present, else the defaults."""
    path = path or (data_dir / "streams.toml")
    return load_config(path) if path.is_file() else StreamConfig()
