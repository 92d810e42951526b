"""The two stages as a partitioned worker runs them: state in tables, time per partition.

:class:`EventStage` runs the dossier processor on the partitions of
``dossier.events`` a worker owns. Each partition has its own watermark (its
latest business time less the lateness, or a tick on ``dossier.ticks``), kept in
a ``clock`` table under ``"p<partition>"``; the timers of the partition's open
dossiers sit in an in-memory heap rebuilt from the state table when the
partition is first seen. Whenever a partition's last final day moves, a clock
fact goes to every partition of the keyed stage.

:class:`KeyedStage` runs the keyed stage (:class:`~streams.aggregates.Aggregates`)
on the partitions of the facts topic. Its watermark is the *minimum* over the
source partitions' clocks (a window is final only when every partition has
passed it), so a slow partition never has its facts counted as late.

Tables are any mutable mappings (faust tables in the worker, dicts in tests);
outputs are ``(topic, key, value)`` triples. No I/O here.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from ledger import topics
from ledger.domain.events import EVENT_TYPES, Recorded
from ledger.domain.rules import RuleBook
from ledger.domain.watermark import Watermark
from streams.aggregates import Aggregates
from streams.config import StreamConfig
from streams.dossier import DossierProcessor, Emit
from streams.outputs import METRIC_KEY
from streams.signals import Detectors

Out = list[tuple[str, str, dict[str, Any]]]
"""(topic, key, value); topic ``facts`` means the keyed stage's input."""
FACTS = "facts"


class BadEvent(ValueError):
    """A record that cannot be applied: not an event, unknown type, or a broken chain."""


def row_output(e: Emit) -> tuple[str, str, dict[str, Any]]:
    v = e.value
    if e.kind == "signal":
        return topics.SIGNALS, v["signal_id"], v
    if e.kind == "alert":
        return topics.ALERTS, v["alert_id"], v
    if e.kind == "metric":
        return topics.METRICS, "|".join(str(v[k]) for k in METRIC_KEY), v
    raise TypeError(f"not a row: {e.kind}")


class EventStage:
    def __init__(
        self,
        rules: RuleBook,
        config: StreamConfig,
        states: MutableMapping[str, Any],
        clocks: MutableMapping[str, Any],
        *,
        partitions: int,
        catalog: Any = None,
    ) -> None:
        self.config = config
        self.processor = DossierProcessor(rules, config, Detectors(rules, catalog, config.signals))
        self.keyed = Aggregates(rules, config)
        self.states = states
        self.clocks = clocks
        self.partitions = partitions
        self._heaps: dict[int, list[tuple[float, str, str]]] = {}
        self._expiries: dict[int, list[tuple[float, str, str]]] = {}

    def _heap(self, p: int) -> list[tuple[float, str, str]]:
        """The partition's timers (and, beside them, its finished states' drop instants)."""
        heap = self._heaps.get(p)
        if heap is None:  # first sight of the partition (start, rebalance): from the table
            heap = self._heaps[p] = []
            expiry = self._expiries[p] = []
            for did, st in list(self.states.items()):
                if not st or st.get("P") != p:
                    continue
                if st["t"] is not None:
                    heap.append((datetime.fromisoformat(st["t"]).timestamp(), st["t"], did))
                if st.get("e") is not None:
                    expiry.append((datetime.fromisoformat(st["e"]).timestamp(), st["e"], did))
            heapq.heapify(heap)
            heapq.heapify(expiry)
        return heap

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: their heaps are rebuilt if they come back."""
        for p in partitions:
            self._heaps.pop(p, None)
            self._expiries.pop(p, None)

    def event(self, p: int, rec: Recorded, reference: datetime) -> Out:
        env = rec.envelope
        etype = env.get("type")
        if etype not in EVENT_TYPES:
            raise BadEvent(f"unknown event type {etype!r}")
        did = env["dossier_id"]
        st = self.states.get(did)
        if st is not None and st["f"] and st["f"]["last_position"] >= rec.position:
            return []  # redelivered
        prev = env.get("prev_hash")
        if st is not None and st.get("h") is not None and prev is not None and prev != st["h"]:
            raise BadEvent(
                f"dossier {did}: position {rec.position} breaks its chain "
                f"(prev_hash {prev[:12]}... is not the hash of the dossier's last event)"
            )
        if st is None and etype != "DossierReceived":
            raise BadEvent(
                f"dossier {did}: {etype} at position {rec.position} with no state: before "
                "its receipt, or after its state was dropped (finished longer ago than the retention)"
            )
        before = None if st is None else st["t"]
        expires = None if st is None else st.get("e")
        try:
            st, emitted = self.processor.apply(st, rec, reference)
        except (KeyError, TypeError, ValueError) as e:
            raise BadEvent(f"dossier {did}: position {rec.position}: {e}") from None
        st["P"] = p
        st["h"] = env.get("hash")
        self.states[did] = st
        if st["t"] != before and st["t"] is not None:
            heapq.heappush(
                self._heap(p), (datetime.fromisoformat(st["t"]).timestamp(), st["t"], did)
            )
        if st.get("e") != expires and st.get("e") is not None:
            self._heap(p)
            heapq.heappush(
                self._expiries[p], (datetime.fromisoformat(st["e"]).timestamp(), st["e"], did)
            )
        out = self._outputs(emitted, rec.position)
        wm = self._clock(p)
        wm.observe(datetime.fromisoformat(env["occurred_at"]))
        return out + self._advance(p, wm, reference, rec.position)

    def tick(self, p: int, instant: datetime, reference: datetime) -> Out:
        wm = self._clock(p)
        wm.push(instant)
        return self._advance(p, wm, reference, None)

    def _clock(self, p: int) -> Watermark:
        return Watermark.from_json(self.clocks.get(f"p{p}"), self.config.lateness)

    def _advance(self, p: int, wm: Watermark, reference: datetime, position: int | None) -> Out:
        out: Out = []
        w = wm.current
        clock = self.clocks.get(f"p{p}") or {}
        if w is not None:
            heap = self._heap(p)
            wts = w.timestamp()
            while heap and heap[0][0] <= wts:
                _, text, did = heapq.heappop(heap)
                st = self.states.get(did)
                if not st or st["t"] != text:
                    continue
                expires = st.get("e")
                emitted = self.processor.fire(st, w, reference)
                out.extend(self._outputs(emitted, st["f"]["last_position"]))
                self.states[did] = st
                if st["t"] is not None:
                    heapq.heappush(
                        heap, (datetime.fromisoformat(st["t"]).timestamp(), st["t"], did)
                    )
                if st.get("e") != expires and st.get("e") is not None:
                    heapq.heappush(
                        self._expiries[p],
                        (datetime.fromisoformat(st["e"]).timestamp(), st["e"], did),
                    )
        if wm.seen is not None:  # finished states go by the events' own time only
            self._heap(p)
            expiry = self._expiries[p]
            limit = (wm.seen - wm.lateness).timestamp()
            while expiry and expiry[0][0] <= limit:
                _, text, did = heapq.heappop(expiry)
                st = self.states.get(did)
                if st and st.get("e") == text:
                    del self.states[did]
        final = self.keyed.final_through(w)
        new = {**wm.to_json(), "final": clock.get("final")}
        if final is not None and final != clock.get("final"):
            new["final"] = final
            for q in range(self.partitions):  # every keyed partition hears the clock
                out.append((FACTS, f"#clock:{q}", {"clock": p, "final": final, "to": q}))
        if new != clock:
            self.clocks[f"p{p}"] = new
        return out

    @staticmethod
    def _outputs(emitted: list[Emit], position: int | None) -> Out:
        out: Out = []
        for e in emitted:
            if e.kind in ("metric", "fact"):
                out.append((FACTS, e.key, {"kind": e.kind, "value": e.value}))
            else:
                out.append(row_output(e))
        return out


def bundled(out: Out) -> Out:
    """The same outputs with each key's facts in one record per run between clocks.

    A record per fact made the facts topic the workers' busiest; one record per key
    per batch holds the key's facts in their order. A clock fact closes the open
    bundles first: the facts computed before a partition's day became final still
    reach every keyed partition before that clock, as they did one by one."""
    result: Out = []
    bundles: dict[str, list[dict[str, Any]]] = {}

    def close() -> None:
        for key, facts in bundles.items():
            result.append((FACTS, key, facts[0] if len(facts) == 1 else {"facts": facts}))
        bundles.clear()

    for topic, key, value in out:
        if topic != FACTS:
            result.append((topic, key, value))
        elif "clock" in value:
            close()
            result.append((topic, key, value))
        else:
            bundles.setdefault(key, []).append(value)
    close()
    return result


class KeyedStage:
    def __init__(
        self,
        rules: RuleBook,
        config: StreamConfig,
        states: MutableMapping[str, Any],
        *,
        sources: int,
    ) -> None:
        self.keyed = Aggregates(rules, config)
        self.states = states
        self.sources = sources
        self.dirty: set[str] = set()

    def fact(self, q: int, key: str, value: dict[str, Any], reference: datetime) -> Out:
        """Apply one record of the facts topic: a clock, a fact, or a bundle of facts
        (:func:`bundled`) applied in order."""
        if "clock" in value:
            return self._clock(q, value, reference)
        if "facts" in value:
            out: Out = []
            for one in value["facts"]:
                out.extend(self._fact(q, key, one))
            return out
        return self._fact(q, key, value)

    def _fact(self, q: int, key: str, value: dict[str, Any]) -> Out:
        final = (self.states.get(f"#final:{q}") or {}).get("final")
        st, rows = self.keyed.apply(self.states.get(key), key, value["value"], final)
        if any(k != "P" for k in st) or not key.startswith("applicant:"):
            st["P"] = q
            self.states[key] = st
            self.dirty.add(key)
        elif key in self.states:
            del self.states[key]
        return [row_output(e) for e in rows]

    def _clock(self, q: int, value: dict[str, Any], reference: datetime) -> Out:
        name = f"#final:{q}"
        clock = dict(self.states.get(name) or {"sources": {}, "final": None})
        sources = dict(clock["sources"])
        if value["final"] <= sources.get(str(value["clock"]), ""):
            return []
        sources[str(value["clock"])] = value["final"]
        clock["sources"] = sources
        out: Out = []
        if len(sources) == self.sources:
            final = min(sources.values())
            if clock["final"] is None or final > clock["final"]:
                clock["final"] = final
                for key, st in list(self.states.items()):
                    if key.startswith("#") or not st or st.get("P") != q:
                        continue
                    rows = self.keyed.advance(key, st, final, reference)
                    self.states[key] = st
                    out.extend(row_output(e) for e in rows)
        self.states[name] = clock
        return out

    def provisional(self) -> Out:
        """Provisional rows of the keys touched since the last call (read-only)."""
        out: Out = []
        for key in sorted(self.dirty):
            st = self.states.get(key)
            if st:
                out.extend(row_output(e) for e in self.keyed.provisional(key, st))
        self.dirty.clear()
        return out
