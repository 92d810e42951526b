"""A small in-memory driver of the detectors, for tests and benches.

It does what the stream processor does for the detectors, without I/O or
checkpoints: folds each event into its dossier's fact sheet
(:func:`projections.state.evolve_into`), hands the detectors a memoised
:func:`projections.state.view`, calls :meth:`Detectors.on_timer` for every timer
earlier than the next event (business time is the watermark: the log is in
business order), routes facts to the applicant and official stages, and closes
each local day once an event of a later day arrives (or at :meth:`finish`).

Pure: keeps everything in memory; not for a whole province's history.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from projections import state
from streams.signals import ApplicantDetector, Detectors, OfficialAlerts, SignalConfig


class Driver:
    def __init__(
        self, rules: RuleBook, catalog: Any = None, config: SignalConfig | None = None
    ) -> None:
        self.rules = rules
        self.detectors = Detectors(rules, catalog, config)
        self.applicants = ApplicantDetector(config)
        self.officials = OfficialAlerts(rules, config)
        self.tz = ZoneInfo(rules.latest.timezone)
        self.facts: dict[str, dict[str, Any]] = {}
        self.scratch: dict[str, dict[str, Any]] = {}
        self.keyed: dict[str, dict[str, Any]] = {}
        self.official_state: dict[str, Any] = {}
        self.signals: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self._heap: list[tuple[float, int, datetime, str, str, int]] = []  # POSIX time first
        self._gen: dict[str, int] = {}
        self._seq = 0
        self._day: date | None = None

    def _view(self, facts: dict[str, Any]) -> Any:
        memo: dict[datetime, dict[str, Any]] = {}

        def view(now: datetime) -> dict[str, Any]:
            hit = memo.get(now)
            if hit is None:
                hit = memo[now] = state.view(facts, self.rules, now)
            return hit

        return view

    def _schedule(self, did: str) -> None:
        gen = self._gen.get(did, 0) + 1
        self._gen[did] = gen
        for at, tag in self.detectors.timers(self.scratch[did], self.facts[did]):
            self._seq += 1
            heapq.heappush(self._heap, (at.timestamp(), self._seq, at, did, tag, gen))

    def _route(self, routed: list[tuple[str, dict[str, Any]]]) -> None:
        for key, fact in routed:
            if key == "officials":
                self.officials.step(self.official_state, fact)
            else:
                st = self.keyed.setdefault(key, {})
                self.signals.extend(self.applicants.step(st, fact))

    def advance(self, now: datetime, inclusive: bool = False) -> None:
        """Fire every timer earlier than ``now`` (or at it, if ``inclusive``)."""
        heap = self._heap
        cut = now.timestamp()
        while heap and (heap[0][0] < cut or (inclusive and heap[0][0] == cut)):
            _, _, at, did, tag, gen = heapq.heappop(heap)
            if gen != self._gen.get(did):
                continue  # superseded: the dossier's timers were asked again since
            facts = self.facts[did]
            sigs, routed = self.detectors.on_timer(
                self.scratch[did], facts, tag, at, self._view(facts)
            )
            self.signals.extend(sigs)
            self._route(routed)
            self._schedule(did)

    def _close_days(self, upto: date) -> None:
        """Close every local day before ``upto``."""
        if self._day is None:
            self._day = upto
            return
        d = self._day
        while d < upto:
            self.alerts.extend(
                self.officials.on_day_final(self.official_state, d.isoformat(), False)
            )
            d += timedelta(days=1)
        self._day = max(self._day, upto)

    def feed(self, rec: Recorded) -> None:
        env = rec.envelope
        at = datetime.fromisoformat(env["occurred_at"])
        self.advance(at)
        self._close_days(at.astimezone(self.tz).date())
        did = env["dossier_id"]
        facts = self.facts.setdefault(did, {})
        state.evolve_into(facts, rec.position, env)
        st = self.scratch.setdefault(did, {})
        sigs, routed = self.detectors.on_event(st, facts, rec, self._view(facts))
        self.signals.extend(sigs)
        self._route(routed)
        self._schedule(did)

    def run(self, records: Iterable[Recorded], now: datetime | None = None) -> Driver:
        last = None
        for rec in records:
            self.feed(rec)
            last = rec.envelope["occurred_at"]
        if now is None and last is not None:
            now = datetime.fromisoformat(last)
        if now is not None:
            self.finish(now)
        return self

    def finish(self, now: datetime) -> None:
        """The watermark reaches ``now``: fire what is due, close the days before it."""
        self.advance(now, inclusive=True)
        self._close_days(now.astimezone(self.tz).date())
