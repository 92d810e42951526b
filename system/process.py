"""``dossier process`` wired on one machine: the ledger, the stream processors and their
store in ``analytics.duckdb``, and the subscribers of ``subscriptions.toml``.

The runner itself is :func:`streams.embedded.run`; the store is
:class:`analytics.stream_store.StreamStore`. The demo and ``dossier run`` call
:func:`process` too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from analytics.connection import database_path
from analytics.stream_store import StreamStore
from ledger.bootstrap import open_ledger, open_rules
from ledger.domain.catalog import load_catalog
from ledger.domain.watermark import Watermark
from ledger.kafka import require_topics
from ledger.settings import Settings
from streams import embedded
from streams.config import StreamConfig, config_for
from streams.pipeline import Pipeline
from streams.subscriptions import Subscriber, load


def process(
    settings: Settings,
    *,
    now: datetime | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
    config: StreamConfig | None = None,
    page: int = 5000,
    poll: float = 1.0,
    db_path: Path | None = None,
    subscriptions: Path | None = None,
    deliver: bool = True,
) -> dict[str, Any]:
    """Catch up with the ledger (and, with ``follow``, keep going); return a summary.

    ``subscriptions`` (default: DATA_DIR/subscriptions.toml when present) names who
    is told what; with ``deliver`` the alerts are sent as they fire and, at the end
    of a run, until every delivery has succeeded or run out of retries."""
    config = config or config_for(settings.data_dir)
    rules = open_rules(settings)
    ledger = open_ledger(settings, rules=rules)
    store = StreamStore(
        db_path or database_path(settings),
        rules,
        memory=settings.duckdb_memory,
        checkpoint=settings.duckdb_checkpoint,
    )
    try:
        position, wm_json, final, events = store.checkpoint()
        pipeline = Pipeline(
            rules,
            config,
            catalog=load_catalog(),
            watermark=Watermark.from_json(wm_json, config.lateness),
            final=final,
        )
        pipeline.events = events
        store.restore(pipeline)
        subscriptions = subscriptions or _default_subscriptions(settings)
        if subscriptions is not None:
            subscribers = load(subscriptions)
            store.subscribe(subscribers, _producer(settings, subscribers))
        return embedded.run(
            ledger,
            store,
            pipeline,
            position,
            now=now,
            follow=follow,
            stop=stop,
            progress=progress,
            page=page,
            poll=poll,
            deliver=deliver,
        )
    finally:
        store.close()


def _default_subscriptions(settings: Settings) -> Path | None:
    path = settings.data_dir / "subscriptions.toml"
    return path if path.is_file() else None


def _producer(
    settings: Settings, subscribers: list[Subscriber]
) -> Callable[[str, bytes, bytes], None] | None:
    """A send function for subscribers' Kafka topics, when a bootstrap is configured."""
    own = sorted({s.delivery.kafka_topic for s in subscribers if s.delivery.kafka_topic})
    if not settings.kafka_bootstrap or not own:
        return None
    require_topics(settings.kafka_bootstrap, own)  # never created implicitly

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")

    def send(topic: str, key: bytes, value: bytes) -> None:
        producer.send(topic, key=key, value=value).get(timeout=10)

    return send
