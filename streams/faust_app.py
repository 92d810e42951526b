"""The faust-streaming app behind ``dossier worker``: the same processors on Kafka.

Topology (every worker in one consumer group splits the partitions)::

    dossier.events + dossier.ticks (co-partitioned, key = dossier id)
        └─ agent ``dossiers``: EventStage (state table ``dossiers``, clock table ``clocks``)
              ├─► dossier.signals, dossier.alerts (rows, keyed by id)
              └─► <app>-facts (key = agency:/procedure:/official:/applicant:..., officials)
                    └─ agent ``keyed``: KeyedStage (table ``keyed``)
                          └─► dossier.metrics, dossier.alerts, dossier.signals

States live in changelog-backed tables, so a restarted or rebalanced worker
recovers them; each stream function is a thin shell around the pure stages in
:mod:`streams.partitioned`. A record that cannot be applied goes to
``dossier.dlq`` with the reason, and the worker goes on.

Nothing connects at import: :func:`make_app` builds the app from settings.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from ledger import topics
from ledger.domain.rules import RuleBook
from ledger.kafka import decode_event, require_topics
from streams.codec import packed
from streams.config import StreamConfig
from streams.partitioned import FACTS, BadEvent, EventStage, KeyedStage, bundled
from streams.writeback import WriteBack


def make_app(
    bootstrap: str,
    rules: RuleBook,
    *,
    app_id: str = "dossier-streams",
    partitions: int = topics.DEFAULT_PARTITIONS,
    config: StreamConfig | None = None,
    wall_clock: bool = False,
    tick_interval: float = 5.0,
    provisional_interval: float = 2.0,
    catalog: Any = None,
    session_timeout: float = 6.0,
    batch_size: int = 1_000,
    batch_within: float = 0.2,
) -> Any:
    """The worker's app. Records are taken in batches (up to ``batch_size``, or what
    came within ``batch_within`` seconds): states are written back and facts bundled
    per batch (:class:`~streams.writeback.WriteBack`, :func:`~streams.partitioned.bundled`)."""
    import faust

    config = config or StreamConfig()
    app = faust.App(
        app_id,
        broker=[f"kafka://{b}" for b in bootstrap.split(",")],
        store="memory://",
        topic_partitions=partitions,
        topic_allow_declare=True,
        table_standby_replicas=0,
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_acks=-1,
    )
    raw = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    source = app.topic(topics.EVENTS, topics.TICKS, allow_empty=True, **raw)
    facts = app.topic(f"{app_id}-facts", partitions=partitions, internal=True, **raw)
    out_topics = {
        name: app.topic(name, **raw) for name in (topics.SIGNALS, topics.ALERTS, topics.METRICS)
    }
    dlq = app.topic(topics.DLQ, **raw)
    states, clocks, keyed_states = (
        WriteBack(app.Table(name, default=None, partitions=partitions))
        for name in ("dossiers", "clocks", "keyed")
    )
    events_stage = EventStage(rules, config, states, clocks, partitions=partitions, catalog=catalog)
    keyed_stage = KeyedStage(rules, config, keyed_states, sources=partitions)

    def commit(batch: WriteBack) -> None:
        """A batch's states into its table: one changelog record per key written, on
        the partition of the record that wrote it (what faust itself would pick)."""
        table = batch.table

        def put(key: str, value: Any, partition: int | None) -> None:
            if value is None:
                table.send_changelog(partition, key, None, value_serializer="raw")
                table.data.pop(key, None)
            else:
                table.send_changelog(partition, key, value)
                table.data[key] = value

        batch.flush(put)

    def send(out: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Buffer the outputs at once, in the order computed (no await in between: a
        timer's rows can never overtake or trail rows computed after them)."""
        for topic, key, value in out:
            if topic == FACTS:
                partition = value["to"] if "clock" in value else None
                facts.send_soon(key=key.encode(), value=packed(value), partition=partition)
            else:
                out_topics[topic].send_soon(key=key.encode(), value=packed(value))

    async def dead_letter(msg: Any, reason: str) -> None:
        where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
        await dlq.send(
            key=msg.key,
            value=msg.value,
            headers=[
                ("reason", f"{where}: {reason}".encode()),
                ("source_topic", msg.topic.encode()),
            ],
        )

    busy = {"last": 0.0}

    @app.agent(source)
    async def dossiers(stream: Any) -> None:
        async for batch in stream.take_events(batch_size, within=batch_within):
            busy["last"] = time.monotonic()
            reference = datetime.now(UTC)
            out: list[tuple[str, str, dict[str, Any]]] = []
            dead: list[tuple[Any, str]] = []
            for event in batch:
                msg = event.message
                states.partition = clocks.partition = msg.partition
                try:
                    if msg.topic == topics.TICKS:
                        at = datetime.fromisoformat(orjson.loads(msg.value)["watermark"])
                        out.extend(events_stage.tick(msg.partition, at, reference))
                    else:
                        rec = decode_event(msg.value)
                        out.extend(events_stage.event(msg.partition, rec, reference))
                except (BadEvent, ValueError, KeyError, TypeError) as e:
                    dead.append((msg, str(e)))
            commit(states)
            commit(clocks)
            send(bundled(out))  # no await since the batch began: nothing came in between
            for msg, reason in dead:
                await dead_letter(msg, reason)

    @app.agent(facts)
    async def keyed(stream: Any) -> None:
        async for batch in stream.take_events(batch_size, within=batch_within):
            reference = datetime.now(UTC)
            out: list[tuple[str, str, dict[str, Any]]] = []
            for event in batch:
                msg = event.message
                keyed_states.partition = msg.partition
                value = orjson.loads(msg.value)
                out.extend(keyed_stage.fact(msg.partition, msg.key.decode(), value, reference))
            commit(keyed_states)
            send(out)

    @app.timer(interval=provisional_interval)
    async def provisional() -> None:
        send(keyed_stage.provisional())

    if wall_clock:

        @app.timer(interval=tick_interval)
        async def wall_ticks() -> None:
            """Live mode: the wall clock advances every owned partition's watermark, once
            the worker is idle (caught up): a tick never overtakes a backlog of events."""
            if time.monotonic() - busy["last"] < tick_interval:
                return
            now = datetime.now(UTC).isoformat()
            for tp in app.consumer.assignment():
                if tp.topic == topics.TICKS:
                    await app.topic(topics.TICKS, **raw).send(
                        value=orjson.dumps({"watermark": now}), partition=tp.partition
                    )

    @app.on_partitions_revoked.connect
    async def on_revoked(app_: Any, revoked: set[Any], **kwargs: Any) -> None:
        events_stage.forget({tp.partition for tp in revoked if tp.topic == topics.EVENTS})

    app.stages = (events_stage, keyed_stage)  # type: ignore[attr-defined]
    return app


def publish_ticks(bootstrap: str, instant: datetime, partitions: int) -> int:
    """Send a watermark tick to every partition of ``dossier.ticks`` (it has
    ``partitions``, the configured count: ``ledger.kafka.configured_partitions``);
    return how many."""
    from kafka import KafkaProducer

    require_topics(bootstrap, [topics.TICKS], partitions)
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    try:
        value = orjson.dumps({"watermark": instant.isoformat()})
        for p in range(partitions):
            producer.send(topics.TICKS, value=value, partition=p)
        producer.flush(timeout=30)
        return partitions
    finally:
        producer.close(timeout=5)
