"""Both stages in one process: the embedded runner's engine (and the tests').

The dossier processor and the keyed stage are the same objects the Kafka workers
run; here their states live in dicts, facts are routed by a function call instead
of a topic, and timers sit in one heap ordered by instant. The runner feeds
events in ledger order, then asks for the rows to write and the states that
changed. Memory: a state per open (or recently finished) dossier, a state per
key; never the log. A dossier's state waits between pages as its JSON (about 2 KB,
a quarter of its dicts' memory), and is decoded when an event or a timer reaches
it: a province-year holds some 150,000 of them at once.

Pure: standard library, orjson and the pure modules.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

import orjson

from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from ledger.domain.watermark import Watermark
from streams.aggregates import Aggregates
from streams.codec import packed
from streams.config import StreamConfig
from streams.dossier import DossierProcessor, Emit, NoState
from streams.outputs import METRIC_KEY
from streams.signals import Detectors


class Pipeline:
    """Dossier states, keyed states, timers, the watermark and the rows to write."""

    def __init__(
        self,
        rules: RuleBook,
        config: StreamConfig | None = None,
        *,
        catalog: Any = None,
        watermark: Watermark | None = None,
        final: str | None = None,
    ) -> None:
        self.config = config or StreamConfig()
        self.dossier = DossierProcessor(
            rules, self.config, Detectors(rules, catalog, self.config.signals)
        )
        self.keyed = Aggregates(rules, self.config)
        self.wm = watermark or Watermark(self.config.lateness)
        self.final = final
        self.dossiers: dict[str, dict[str, Any] | bytes] = {}
        """Each dossier's state: a dict while this page changes it, else its JSON."""
        self.keys: dict[str, dict[str, Any]] = {}
        self._heap: list[tuple[float, str, str]] = []  # (POSIX instant, its text, dossier)
        self._expiry: list[tuple[float, str, str]] = []  # finished states' drop instants
        self.changed_dossiers: set[str] = set()
        self.dropped_dossiers: set[str] = set()
        self.changed_keys: set[str] = set()
        self.active: set[str] = set()
        """Keys with days pending or dossiers open: the ones a closing day concerns."""
        self.dirty: set[str] = set()
        """Keys touched since the last provisional rows."""
        self.dropped_keys: set[str] = set()
        self.signals: dict[str, dict[str, Any]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.metrics: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.events = 0
        self.ignored = 0
        """Events of dossiers whose state was dropped after their retention."""

    # --- loading saved states ----------------------------------------------------

    def restore_dossier(self, dossier_id: str, st: dict[str, Any] | bytes) -> None:
        """A saved state (its JSON, or the dict)."""
        self.dossiers[dossier_id] = st
        if isinstance(st, bytes):
            st = orjson.loads(st)
        self._push_timer(dossier_id, st)
        self._push_expiry(dossier_id, st)

    def state(self, dossier_id: str) -> dict[str, Any] | None:
        """A dossier's state, decoded (a copy, when it waits as JSON)."""
        st = self.dossiers.get(dossier_id)
        return orjson.loads(st) if isinstance(st, bytes) else st

    def restore_key(self, key: str, st: dict[str, Any]) -> None:
        self.keys[key] = st
        if not key.startswith("applicant:"):
            self.active.add(key)
            if st.get("dirty"):  # touched before a restart, its provisional rows unwritten
                self.dirty.add(key)

    # --- feeding ----------------------------------------------------------------------

    def feed(self, rec: Recorded, reference: datetime) -> None:
        """One event in ledger order; fires what the watermark passes after it."""
        did = rec.envelope["dossier_id"]
        old = self.state(did)
        before = None if old is None else old["t"]
        expires = None if old is None else old.get("e")
        try:
            st, out = self.dossier.apply(old, rec, reference)
        except NoState:
            self.ignored += 1  # the ledger has its receipt: a dossier finished long ago
            self.wm.observe(datetime.fromisoformat(rec.envelope["occurred_at"]))
            return
        self.events += 1
        self.dossiers[did] = st
        self.changed_dossiers.add(did)
        if st["t"] != before:
            self._push_timer(did, st)
        if old is None or st.get("e") != expires:
            self._push_expiry(did, st)
        self._route(out)
        self.wm.observe(datetime.fromisoformat(rec.envelope["occurred_at"]))
        self.advance(reference)

    def push(self, instant: datetime, reference: datetime) -> None:
        """Move the watermark to at least ``instant`` (``--now``, a tick, the wall clock)."""
        self.wm.push(instant)
        self.advance(reference)

    def advance(self, reference: datetime) -> None:
        """Fire the timers the watermark has passed; finalize the days it has closed."""
        w = self.wm.current
        if w is None:
            return
        heap = self._heap
        wts = w.timestamp()
        while heap and heap[0][0] <= wts:
            _, text, did = heapq.heappop(heap)
            st = self.state(did)
            if st is None or st["t"] != text:
                continue  # stale entry: the timer moved or the state is gone
            expires = st.get("e")
            self._route(self.dossier.fire(st, w, reference))
            self.dossiers[did] = st
            self.changed_dossiers.add(did)
            self._push_timer(did, st)
            if st.get("e") != expires:
                self._push_expiry(did, st)
        seen = self.wm.seen
        if seen is not None:  # finished states go by the events' own time only
            limit = (seen - self.wm.lateness).timestamp()
            expiry = self._expiry
            while expiry and expiry[0][0] <= limit:
                _, text, did = heapq.heappop(expiry)
                st = self.state(did)
                if st is None or st.get("e") != text:
                    continue
                del self.dossiers[did]
                self.changed_dossiers.discard(did)
                self.dropped_dossiers.add(did)
        final = self.keyed.final_through(w)
        if final is not None and (self.final is None or final > self.final):
            self.final = final
            for key in sorted(self.active):
                kst = self.keys[key]
                rows = self.keyed.advance(key, kst, final, reference)
                if rows:
                    self._collect(rows)
                self.changed_keys.add(key)
                if self.keyed.idle(key, kst):
                    self.active.discard(key)

    def provisional(self) -> None:
        """Provisional rows of every key touched since the last call."""
        for key in sorted(self.dirty - self.dropped_keys):
            if key in self.keys:
                self._collect(self.keyed.provisional(key, self.keys[key]))
                self.changed_keys.add(key)  # its dirty mark is cleared: saved with it
        self.dirty.clear()

    def take(self, provisional: bool = True) -> dict[str, Any]:
        """The rows and changed states since the last call (then forgotten); with
        ``provisional``, also the provisional rows of the keys touched meanwhile. The
        changed dossiers' states come as their JSON (``bytes``), which they wait as."""
        if provisional:
            self.provisional()
        changed = {}
        for d in self.changed_dossiers:
            st = self.dossiers[d]
            if not isinstance(st, bytes):
                st = packed(st)
            changed[d] = self.dossiers[d] = st
        out = {
            "signals": list(self.signals.values()),
            "alerts": list(self.alerts.values()),
            "metrics_daily": list(self.metrics.values()),
            "dossiers": changed,
            "dropped": set(self.dropped_dossiers),
            "keys": {k: self.keys[k] for k in self.changed_keys - self.dropped_keys},
            "dropped_keys": set(self.dropped_keys),
        }
        self.signals, self.alerts, self.metrics = {}, {}, {}
        self.changed_dossiers, self.dropped_dossiers = set(), set()
        self.changed_keys, self.dropped_keys = set(), set()
        return out

    # --- routing ------------------------------------------------------------------------

    def _push_expiry(self, did: str, st: dict[str, Any]) -> None:
        e = st.get("e")
        if e is not None:
            heapq.heappush(self._expiry, (datetime.fromisoformat(e).timestamp(), e, did))

    def _push_timer(self, did: str, st: dict[str, Any]) -> None:
        t = st["t"]
        if t is not None:
            heapq.heappush(self._heap, (datetime.fromisoformat(t).timestamp(), t, did))

    def _route(self, out: list[Emit]) -> None:
        for e in out:
            if e.kind in ("metric", "fact"):
                st, rows = self.keyed.apply(self.keys.get(e.key), e.key, e.value, self.final)
                self.changed_keys.add(e.key)
                if not e.key.startswith("applicant:"):
                    self.active.add(e.key)
                    self.dirty.add(e.key)
                if st or not e.key.startswith("applicant:"):
                    self.keys[e.key] = st
                    self.dropped_keys.discard(e.key)
                else:  # an applicant with nothing left to remember
                    self.keys.pop(e.key, None)
                    self.dropped_keys.add(e.key)
                if rows:
                    self._collect(rows)
            else:
                self._collect([e])

    def _collect(self, rows: list[Emit]) -> None:
        for e in rows:
            v = e.value
            if e.kind == "signal":
                self.signals[v["signal_id"]] = v
            elif e.kind == "alert":
                self.alerts[v["alert_id"]] = v
            elif e.kind == "metric":
                self.metrics[tuple(v[k] for k in METRIC_KEY)] = v
            else:
                raise TypeError(f"not a row: {e.kind}")
