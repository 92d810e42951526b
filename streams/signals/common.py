"""What every detector family shares: the context of one call, and how a signal is written.

Pure: standard library and the ledger's pure modules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.durations import Duration
from ledger.domain.rules import RuleBook, RuleSet
from ledger.domain.working_calendar import BusinessCalendar
from projections import state
from streams.outputs import signal
from streams.signals.config import SignalConfig

Facts = dict[str, Any]
View = Callable[[datetime], dict[str, Any]]
Routed = list[tuple[str, dict[str, Any]]]
Found = tuple[list[dict[str, Any]], Routed]

US = timedelta(microseconds=1)
OFFICIAL_ROLES = frozenset(
    {"receiver", "handler", "appraiser", "approver", "desk_head", "agency_head"}
)
"""Roles of staff (not the applicant, the post or the system)."""


class Ctx:
    """One call of the detectors: the dossier's scratch, facts, the event (if any), outputs."""

    __slots__ = (
        "st",
        "facts",
        "env",
        "position",
        "view",
        "rules",
        "catalog",
        "config",
        "out",
        "routed",
        "_rs",
        "_cal",
    )

    def __init__(
        self,
        st: dict[str, Any],
        facts: Facts,
        env: dict[str, Any] | None,
        position: int | None,
        view: View,
        rules: RuleBook,
        catalog: Any,
        config: SignalConfig,
    ) -> None:
        self.st = st
        self.facts = facts
        self.env = env
        self.position = position
        self.view = view
        self.rules = rules
        self.catalog = catalog
        self.config = config
        self.out: list[dict[str, Any]] = []
        self.routed: Routed = []
        self._rs: RuleSet | None = None
        self._cal: BusinessCalendar | None = None

    @property
    def rs(self) -> RuleSet:
        """The rule set pinned at receipt."""
        if self._rs is None:
            self._rs = state.rule_set(self.rules, self.facts)
        return self._rs

    @property
    def cal(self) -> BusinessCalendar:
        """The dossier's agency's working-day clock under the pinned rule set."""
        if self._cal is None:
            self._cal = BusinessCalendar.for_rules(self.rs, self.facts["agency"])
        return self._cal

    def cal_for(self, agency: str | None) -> BusinessCalendar:
        if agency is None or agency == self.facts["agency"]:
            return self.cal
        return BusinessCalendar.for_rules(self.rs, agency)

    def fired(self, key: str) -> bool:
        return key in self.st.get("fired", ())

    def emit(
        self,
        kind: str,
        severity: str,
        *,
        anchor: str,
        event_ids: list[str],
        params: dict[str, Any],
        detected_at: str | None = None,
        official_id: str | None = None,
        once: str | None = None,
    ) -> None:
        """Add a signal; ``once`` (a key) keeps it to one per dossier and key."""
        if once is not None:
            fired = self.st.setdefault("fired", [])
            if once in fired:
                return
            fired.append(once)
        env = self.env
        if detected_at is None:
            assert env is not None
            detected_at = env["occurred_at"]
        if official_id is None and env is not None:
            official_id = env["actor"]["id"]
        self.out.append(
            signal(
                kind,
                severity,
                anchor=anchor,
                detected_at=detected_at,
                event_ids=event_ids,
                params=params,
                dossier_id=self.facts["dossier_id"],
                official_id=official_id,
                agency=self.facts["agency"],
                procedure_code=self.facts["procedure_code"],
                position=self.position,
            )
        )

    # --- timers -------------------------------------------------------------------

    def arm(self, tag: str, at: datetime | None) -> None:
        """Ask for :meth:`Detectors.on_timer` at ``at`` (None: cancel)."""
        timers = self.st.get("t")
        if at is None:
            if timers and tag in timers:
                del timers[tag]
                if not timers:
                    del self.st["t"]
            return
        if timers is None:
            timers = self.st["t"] = {}
        timers[tag] = at.isoformat()


_SPANS: dict[tuple[int, str, float], tuple[BusinessCalendar, timedelta | None]] = {}


def office_span(cal: BusinessCalendar, d: Duration) -> timedelta | None:
    """A duration as office time, for working units; None for elapsed-time units.

    Remembered per calendar and duration (calendars are shared and live as long as
    the process; a province has a few dozen budgets)."""
    key = (id(cal), d.unit, d.value)
    hit = _SPANS.get(key)
    if hit is not None and hit[0] is cal:
        return hit[1]
    if d.unit == "working_days":
        span: timedelta | None = cal.working_day_length * d.value
    elif d.unit == "working_hours":
        span = timedelta(hours=d.value)
    else:
        span = None
    if len(_SPANS) >= 10_000:
        _SPANS.clear()
    _SPANS[key] = (cal, span)
    return span


def add_duration(cal: BusinessCalendar, start: datetime, d: Duration) -> datetime:
    """``start`` plus a tolerance or grace: office time for working units, else elapsed."""
    span = office_span(cal, d)
    if span is not None:
        return cal.add_working_time(start, span)
    if d.unit in ("calendar_days", "months"):
        return start + timedelta(days=d.value * (30 if d.unit == "months" else 1))
    if d.unit == "same_day":
        return cal.due(start, d)
    return start + d.as_timedelta()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local_day(cal: BusinessCalendar, at: datetime) -> Any:
    return at.astimezone(cal.tz).date()
