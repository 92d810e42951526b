"""Kafka adapter: producer and admin clients, topic creation, and the record serde.

A record on ``dossier.events`` is an ordinary Kafka record any client can read:

* key: the dossier id (UTF-8), so one dossier's events stay ordered in one partition;
* value: the stored JSON envelope (with ``hash``, ``prev_hash``, ``appended_at``)
  plus the ledger ``position`` (the dedupe key) and the dossier chain ``version``;
* headers: ``type`` and ``schema_version`` (so a router needs not parse the value).

Nothing here connects at import; the clients are built by the callers' composition
roots (the CLI commands, the benchmarks, the tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from ledger import topics
from ledger.events import Recorded

if TYPE_CHECKING:
    from kafka import KafkaAdminClient, KafkaProducer

HEADER_TYPE = "type"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_POSITION = "position"
HEADER_REASON = "reason"
"""DLQ records carry why they were refused in this header."""

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 20,
    "batch_size": 256 * 1024,
    "max_in_flight_requests_per_connection": 5,  # idempotence keeps order at <= 5
    "retries": 2**31 - 1,
    "delivery_timeout_ms": 120_000,
    "request_timeout_ms": 30_000,
}
"""At-least-once, ordered per partition: acks from every in-sync replica, and
idempotent sends so a retried batch is neither duplicated nor reordered by the broker."""


class KafkaConfigError(ValueError):
    """No bootstrap servers were configured."""


def require_bootstrap(bootstrap: str | None) -> str:
    if not bootstrap:
        raise KafkaConfigError(
            "no Kafka bootstrap servers: pass --bootstrap HOST:PORT or set DOSSIER_KAFKA_BOOTSTRAP"
        )
    return bootstrap


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    """A kafka-python producer with the relay's delivery settings (overridable)."""
    from kafka import KafkaProducer

    config = {**PRODUCER_DEFAULTS, **overrides}
    try:
        return KafkaProducer(bootstrap_servers=bootstrap.split(","), **config)
    except Exception as e:  # an old broker without idempotence support
        if not config.get("enable_idempotence") or "idempot" not in str(e).lower():
            raise
        return KafkaProducer(
            bootstrap_servers=bootstrap.split(","), **{**config, "enable_idempotence": False}
        )


def make_admin(bootstrap: str) -> KafkaAdminClient:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10_000)


def ensure_topics(
    bootstrap: str,
    *,
    partitions: int = topics.DEFAULT_PARTITIONS,
    replication_factor: int = 1,
    names: Iterable[str] = topics.ALL,
) -> dict[str, str]:
    """Create the project's topics that are missing; return ``{name: created|exists}``.

    Idempotent: a topic that already exists is left as it is (its partition
    count is not changed, since that would move keys between partitions).
    """
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = make_admin(bootstrap)
    try:
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        for name in names:
            if name in existing:
                result[name] = "exists"
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name, num_partitions=partitions, replication_factor=replication_factor
                        )
                    ]
                )
                result[name] = "created"
            except TopicAlreadyExistsError:  # created meanwhile by another init
                result[name] = "exists"
        return result
    finally:
        admin.close()


def partition_counts(bootstrap: str, names: Iterable[str]) -> dict[str, int]:
    """Partitions per topic, as the broker reports them (missing topics omitted)."""
    admin = make_admin(bootstrap)
    try:
        out: dict[str, int] = {}
        for meta in admin.describe_topics(list(names)):
            if meta.get("error_code", 0) == 0 and meta.get("partitions"):
                out[meta.get("name") or meta.get("topic")] = len(meta["partitions"])
        return out
    finally:
        admin.close()


# --- serde -------------------------------------------------------------------


def encode_event(rec: Recorded) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a stored event on ``dossier.events``."""
    env = rec.envelope
    value = orjson.dumps({**env, "position": rec.position, "version": rec.version})
    headers = [
        (HEADER_TYPE, env["type"].encode()),
        (HEADER_SCHEMA_VERSION, str(env.get("schema_version", "")).encode()),
        (HEADER_POSITION, str(rec.position).encode()),
    ]
    return env["dossier_id"].encode(), value, headers


def decode_event(value: bytes) -> Recorded:
    """A ``dossier.events`` record value back into a :class:`Recorded`."""
    obj = orjson.loads(value)
    position = obj.pop("position")
    version = obj.pop("version", 0)
    return Recorded(int(position), int(version), obj)


def dlq_headers(reason: str, source_topic: str) -> list[tuple[str, bytes]]:
    """Headers of a record sent to ``dossier.dlq``: why, and where it came from."""
    return [(HEADER_REASON, reason.encode()), ("source_topic", source_topic.encode())]
