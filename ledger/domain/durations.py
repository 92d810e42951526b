"""Durations: the amounts of time procedures allow, in the units real procedures use.

Apart from the calendar because rule sets, the catalog and interchange read and
write allowances without counting working days. Pure: standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

UNITS = (
    "working_days",
    "working_hours",
    "calendar_days",
    "months",
    "same_day",
    "hours",
    "minutes",
)
_SHORT = {
    "wd": "working_days",
    "wh": "working_hours",
    "d": "calendar_days",
    "mo": "months",
    "h": "hours",
    "m": "minutes",
}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(wd|wh|mo|d|h|m)\s*$")


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of time in one of the units real procedures use.

    ``working_*`` units count only office time on working days; ``hours`` and
    ``minutes`` are plain elapsed time; ``same_day`` means "by the end of the
    receipt's working day".
    """

    value: float
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown duration unit {self.unit!r} (one of {', '.join(UNITS)})")
        if self.value < 0:
            raise ValueError(f"a duration cannot be negative: {self.value}")

    @classmethod
    def parse(cls, spec: Any) -> Duration:
        """From ``"3wd"``/``"24h"``/``"15m"``, or an event's ``{"value", "unit"}`` object."""
        if isinstance(spec, Duration):
            return spec
        if isinstance(spec, dict):
            return cls(float(spec.get("value") or 0), spec["unit"])
        m = _SPAN.match(str(spec))
        if not m:
            raise ValueError(f"not a duration: {spec!r} (e.g. '3wd', '2wh', '24h', '15m')")
        return cls(float(m.group(1)), _SHORT[m.group(2)])

    def to_json(self) -> dict[str, Any]:
        value = int(self.value) if float(self.value).is_integer() else self.value
        return {"value": value, "unit": self.unit}

    def as_timedelta(self) -> timedelta:
        """Plain elapsed time; only for ``hours`` and ``minutes``."""
        if self.unit == "hours":
            return timedelta(hours=self.value)
        if self.unit == "minutes":
            return timedelta(minutes=self.value)
        raise ValueError(f"{self.unit} is not a fixed span of elapsed time")
