"""Read a topic back for checks, and apply the consumers' dedupe rule.

Counts records actually read until the expected number or a deadline: never
trusts end offsets (Tansu under-reports them with batching producers).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str
    value: dict[str, Any]
    raw: bytes
    headers: dict[str, bytes]

    @property
    def position(self) -> int:
        return int(self.value["position"])


def read_topic(
    bootstrap: str,
    topic: str,
    expected: int,
    *,
    deadline: float = 30.0,
    grace: float = 1.0,
) -> list[Record]:
    """Every record of ``topic`` in (partition, offset) order.

    Polls until at least ``expected`` records were read (then ``grace`` seconds
    more, to catch any surplus) or ``deadline`` seconds pass.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, consumer_timeout_ms=500
    )
    try:
        end = time.monotonic() + deadline
        parts: set[int] | None = None
        while parts is None and time.monotonic() < end:
            parts = consumer.partitions_for_topic(topic)
            if parts is None:
                time.sleep(0.1)
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Record] = []
        stop_at = end
        while time.monotonic() < stop_at:
            polled = consumer.poll(timeout_ms=200, max_records=10_000)
            for msgs in polled.values():
                for m in msgs:
                    out.append(
                        Record(
                            m.partition,
                            m.offset,
                            m.key.decode() if m.key is not None else "",
                            orjson.loads(m.value),
                            m.value,
                            {k: v for k, v in m.headers},
                        )
                    )
            if len(out) >= expected:
                stop_at = min(stop_at, time.monotonic() + grace)
        out.sort(key=lambda r: (r.partition, r.offset))
        return out
    finally:
        consumer.close()


def dedupe(records: list[Record]) -> tuple[dict[str, list[int]], int]:
    """Apply the consumers' rule: per dossier, skip a record whose position is not
    above the last one seen. Returns (positions kept per dossier, records skipped)."""
    kept: dict[str, list[int]] = defaultdict(list)
    skipped = 0
    for r in records:  # (partition, offset) order
        seen = kept[r.key]
        if seen and r.position <= seen[-1]:
            skipped += 1
            continue
        seen.append(r.position)
    return dict(kept), skipped


def ledger_positions(ledger: Any) -> dict[str, list[int]]:
    """Each dossier's positions in ledger order, straight from the store."""
    out: dict[str, list[int]] = defaultdict(list)
    for rec in ledger.iter_all():
        out[rec.dossier_id].append(rec.position)
    return dict(out)
