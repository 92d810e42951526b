"""The distributed projection runner: a consumer group on ``dossier.events``.

Several workers with the same group id split the topic's partitions. Records
are the relay's JSON envelopes with their ledger ``position`` (key = dossier
id, so one dossier's events stay ordered in one partition). The read-model
store, not Kafka, is the source of truth for progress: each batch is applied
together with a per-partition checkpoint (``kafka:<topic>:<partition>`` = the
next offset) in one transaction, and on assignment the consumer seeks to the
stored checkpoint. Offsets are also committed to Kafka (for monitoring only).
A redelivered record, or one a previous owner of the partition already applied,
is skipped by the per-dossier position mark in the dossier's row.

A record that does not decode stops the worker with its topic, partition and
offset named: it is never skipped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ledger.domain.events import Recorded
from ledger.kafka import decode_event, require_project_topics
from ledger.topics import EVENTS
from projections.runner import Projector

if TYPE_CHECKING:
    from ledger.settings import Settings


class BadRecord(ValueError):
    """A record on the events topic is not a stored event envelope."""


def checkpoint_name(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


def _decode(msg: Any) -> Recorded:
    try:
        rec = decode_event(msg.value)
        rec.envelope["dossier_id"], rec.envelope["type"], rec.envelope["occurred_at"]
    except (ValueError, KeyError, TypeError) as e:
        raise BadRecord(
            f"{msg.topic}[{msg.partition}]@{msg.offset}: not a stored event envelope: {e}"
        ) from None
    return rec


def run_kafka(
    projector: Projector,
    *,
    bootstrap: str,
    group: str,
    settings: Settings,
    topic: str = EVENTS,
    once: bool = False,
    idle_timeout: float = 5.0,
    batch_size: int = 1000,
    session_timeout_ms: int = 6000,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Consume until stopped (or, with ``once``, until idle for ``idle_timeout`` seconds).

    ``settings`` give the configured partition count the topic must have
    (:func:`ledger.kafka.require_project_topics`)."""
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    require_project_topics(bootstrap, [topic], settings)  # never let a subscription auto-create it
    store = projector.store
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(300, session_timeout_ms // 4),
        max_poll_records=batch_size,
    )

    class SeekToCheckpoint(ConsumerRebalanceListener):
        def on_partitions_assigned(self, assigned: Any) -> None:
            stored = store.positions(f"kafka:{topic}:")
            for tp in assigned:
                offset = stored.get(checkpoint_name(tp.topic, tp.partition))
                if offset is not None:
                    consumer.seek(tp, offset)

        def on_partitions_revoked(self, revoked: Any) -> None:
            return None

    consumer.subscribe([topic], listener=SeekToCheckpoint())
    applied = records_read = batches = 0
    idle_since = time.monotonic()
    try:
        while not should_stop():
            polled = consumer.poll(timeout_ms=200, max_records=batch_size)
            if not polled:
                projector.settle()  # caught up: the verdicts at the watermark too
                idle = time.monotonic() - idle_since
                # Before any assignment, allow for the group join as well.
                limit = idle_timeout if consumer.assignment() else idle_timeout + 30
                if once and idle > limit:
                    break
                continue
            records: list[Recorded] = []
            tracking: dict[str, int] = {}
            offsets = {}
            for tp, msgs in sorted(polled.items(), key=lambda kv: kv[0].partition):
                records.extend(_decode(m) for m in msgs)
                tracking[checkpoint_name(tp.topic, tp.partition)] = msgs[-1].offset + 1
                offsets[tp] = OffsetAndMetadata(msgs[-1].offset + 1, "", -1)
            applied += projector.apply(records, tracking)
            records_read += len(records)
            batches += 1
            try:
                consumer.commit(offsets)
            except Exception:  # noqa: BLE001 - the store holds the checkpoint of record
                pass
            idle_since = time.monotonic()
        projector.settle()
    finally:
        consumer.close(autocommit=False)
    return {
        "source": "kafka",
        "topic": topic,
        "group": group,
        "records": records_read,
        "applied": applied,
        "batches": batches,
    }
