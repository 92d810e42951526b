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

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ledger import topics
from ledger.domain.events import SCHEMA_VERSION, Recorded, upcast
from ledger.gc_pause import paused_gc

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

    from ledger.application import DossierLedger
    from ledger.settings import Settings

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
    "allow_auto_create_topics": False,
}
"""At-least-once, ordered per partition: acks from every in-sync replica, and
idempotent sends so a retried batch is neither duplicated nor reordered by the broker."""

CONFLUENT_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,  # implies max.in.flight <= 5 and ordered retries
    "linger.ms": 20,
    "batch.size": 1_000_000,
    # No compression: kafka-python and aiokafka consumers would need the lz4 package,
    # and on the measured broker it gained little (bench/relay.py).
    "compression.type": "none",
    "message.timeout.ms": 120_000,
    "queue.buffering.max.messages": 500_000,
    # The Java client's partitioner (murmur2 of the key), as kafka-python uses:
    # a dossier lands in the same partition whichever client published it.
    "partitioner": "murmur2_random",
    "allow.auto.create.topics": False,
}
"""The same guarantee through librdkafka, the client the relay uses by default."""

CLIENTS = ("confluent", "kafka-python")
DEFAULT_CLIENT = "confluent"
"""Measured on the test broker (bench/relay.py): confluent-kafka publishes the
relay's records about 15x faster than kafka-python, whose pure-Python
producer tops out near 9,000 records/s, under the ingest rate."""

_CONFLUENT_NAMES = {
    "linger_ms": "linger.ms",
    "max_request_size": "message.max.bytes",
    "batch_size": "batch.size",
    "compression_type": "compression.type",
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
}


class KafkaConfigError(ValueError):
    """No bootstrap servers were configured."""


class TopicError(RuntimeError):
    """A topic is missing or has another partition count than configured.

    Any command that meets it (relay, project, sink, workers) stops with this
    one-line message and exit status 1 (``cli.options.click_error``).
    """


def require_bootstrap(bootstrap: str | None) -> str:
    if not bootstrap:
        raise KafkaConfigError(
            "no Kafka bootstrap servers: pass --bootstrap HOST:PORT or set DOSSIER_KAFKA_BOOTSTRAP"
        )
    return bootstrap


def configured_partitions(settings: Settings) -> int:
    """Partitions of the keyed topics: ``DOSSIER_KAFKA_PARTITIONS``, else 12."""
    raw = settings.kafka_partitions or ""
    if not raw:
        return topics.DEFAULT_PARTITIONS
    if not raw.isdigit() or int(raw) < 1:
        raise KafkaConfigError(f"DOSSIER_KAFKA_PARTITIONS must be a positive integer, got {raw!r}")
    return int(raw)


def expected_partitions(name: str, partitions: int) -> int:
    """What ``name`` must have when the keyed topics have ``partitions``."""
    return topics.FIXED_PARTITIONS.get(name, partitions)


# --- producers -----------------------------------------------------------------


class Publisher(Protocol):
    """Sends a page of records and says how much of it the broker acknowledged.

    Also takes kafka-python's single-record form, ``send(topic, key=, value=,
    headers=)`` then ``flush()``, for callers that fire a few records (a DLQ).
    """

    client: str

    def send(
        self,
        topic: str,
        messages: Sequence[Message] | None = None,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        """Start sending; returns a ticket for :meth:`wait`."""

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent so far is delivered or failed."""

    def wait(self, ticket: Any, timeout: float) -> tuple[int, str | None]:
        """(length of the acknowledged prefix, why the next record failed or None)."""

    def close(self, timeout: float = 10.0) -> None: ...


Message = tuple[bytes, bytes, list[tuple[str, bytes]]]


class ConfluentPublisher:
    """librdkafka (confluent-kafka): sends in its own threads, acks by callback."""

    client = "confluent"

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        from confluent_kafka import Producer

        config = dict(CONFLUENT_DEFAULTS)
        for key, value in overrides.items():
            config[_CONFLUENT_NAMES.get(key, key)] = value
        self.producer = Producer({"bootstrap.servers": bootstrap, **config})

    def send(
        self,
        topic: str,
        messages: Sequence[Message] | None = None,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        from confluent_kafka import KafkaException

        if messages is None:
            messages = [(key, value, headers or [])]  # type: ignore[list-item]

        acks: list[str | None] = [None] * len(messages)
        done = [0]

        def on_delivery(i: int) -> Any:
            def cb(err: Any, msg: Any) -> None:
                acks[i] = "ok" if err is None else str(err)
                done[0] += 1

            return cb

        produce, poll = self.producer.produce, self.producer.poll
        refused: tuple[int, str] | None = None
        for i, (k, v, h) in enumerate(messages):
            while True:
                try:
                    produce(topic, v, k, headers=h, on_delivery=on_delivery(i))
                    break
                except BufferError:  # local queue full: let deliveries drain
                    poll(0.05)
                except KafkaException as e:  # refused before sending (e.g. too large)
                    refused = (i, str(e.args[0] if e.args else e))
                    break
            if refused:
                break
            if i % 1000 == 999:
                poll(0)
        sent = refused[0] if refused else len(messages)
        return acks, done, sent, refused

    def wait(self, ticket: Any, timeout: float) -> tuple[int, str | None]:
        acks, done, sent, refused = ticket
        deadline = time.monotonic() + timeout
        while done[0] < sent and time.monotonic() < deadline:
            self.producer.poll(0.05)
        for i in range(sent):
            if acks[i] != "ok":
                return i, acks[i] or "no acknowledgement in time"
        return sent, (refused[1] if refused else None)

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(120.0 if timeout is None else timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is pending (up to ``timeout``), drop the rest, release librdkafka
        (else its threads keep reconnecting, and logging, until garbage collection)."""
        if self.producer.flush(timeout):
            self.producer.purge()
            self.producer.poll(0)
        if hasattr(self.producer, "close"):  # confluent-kafka >= 2.12
            self.producer.close()


class KafkaPythonPublisher:
    """kafka-python: pure Python, slower; kept for comparison and as a fallback."""

    client = "kafka-python"

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        from kafka import KafkaProducer

        config = {**PRODUCER_DEFAULTS, **overrides}
        servers = bootstrap.split(",")
        try:
            self.producer = KafkaProducer(bootstrap_servers=servers, **config)
        except Exception as e:  # an old broker without idempotence support
            if not config.get("enable_idempotence") or "idempot" not in str(e).lower():
                raise
            config["enable_idempotence"] = False
            self.producer = KafkaProducer(bootstrap_servers=servers, **config)

    def send(
        self,
        topic: str,
        messages: Sequence[Message] | None = None,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        from kafka.errors import KafkaError

        if messages is None:
            messages = [(key, value, headers or [])]  # type: ignore[list-item]
        futures, refused = [], None
        for k, v, h in messages:
            try:
                futures.append(self.producer.send(topic, key=k, value=v, headers=h))
            except KafkaError as e:  # refused before sending (e.g. too large)
                refused = str(e)
                break
        return futures, refused

    def wait(self, ticket: Any, timeout: float) -> tuple[int, str | None]:
        futures, refused = ticket
        self.producer.flush(timeout=timeout)
        for i, fut in enumerate(futures):
            if not fut.is_done or fut.failed():
                return i, str(fut.exception) if fut.is_done else "no acknowledgement in time"
        return len(futures), refused

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.producer.close(timeout=timeout)


def make_producer(bootstrap: str, client: str | None = None, **overrides: Any) -> Publisher:
    """A publisher with the relay's delivery settings (overridable).

    ``client``: ``confluent`` (default) or ``kafka-python`` (callers pass
    ``Settings.kafka_client``, ``DOSSIER_KAFKA_CLIENT``, when no flag names one);
    overrides use kafka-python's names (``linger_ms``, ``max_request_size``...) or
    librdkafka's.
    """
    client = client or DEFAULT_CLIENT
    if client == "confluent":
        return ConfluentPublisher(bootstrap, **overrides)
    if client == "kafka-python":
        return KafkaPythonPublisher(bootstrap, **overrides)
    raise KafkaConfigError(f"unknown Kafka client {client!r}: choose one of {', '.join(CLIENTS)}")


# --- topics --------------------------------------------------------------------


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
    """Create the project's topics that are missing.

    Returns ``{name: created|exists|mismatch}``: ``mismatch`` when the topic
    exists with another partition count than asked for. An existing topic is
    never changed (repartitioning would move dossiers between partitions).
    The witness topics keep their records forever (``retention.ms=-1``).
    """
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    names = list(names)
    admin = make_admin(bootstrap)
    try:
        existing = _describe(admin, names)
        result: dict[str, str] = {}
        for name in names:
            want = expected_partitions(name, partitions)
            if name not in existing:
                configs = topics.WITNESS_CONFIGS if name in topics.WITNESSES else {}
                try:
                    admin.create_topics(
                        [
                            NewTopic(
                                name,
                                num_partitions=want,
                                replication_factor=replication_factor,
                                topic_configs=configs,
                            )
                        ]
                    )
                    result[name] = "created"
                    continue
                except TopicAlreadyExistsError:  # created meanwhile by another init
                    existing.update(_describe(admin, [name]))
            result[name] = "exists" if existing.get(name) == want else "mismatch"
        return result
    finally:
        admin.close()


def _describe(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition count per existing topic (a metadata request that creates nothing)."""
    out: dict[str, int] = {}
    for meta in admin.describe_topics(names):
        if meta.get("error_code", 0) == 0 and meta.get("partitions"):
            out[meta.get("name") or meta.get("topic")] = len(meta["partitions"])
    return out


def partition_counts(bootstrap: str, names: Iterable[str]) -> dict[str, int]:
    """Partitions per topic, as the broker reports them (missing topics omitted)."""
    admin = make_admin(bootstrap)
    try:
        return _describe(admin, list(names))
    finally:
        admin.close()


def require_topics(bootstrap: str, names: Sequence[str], partitions: int | None = None) -> None:
    """Refuse to start on a missing topic, or one with another partition count.

    Every producer and consumer calls this first: a broker that auto-creates
    topics would otherwise create ``dossier.events`` with its own default count
    and workers would silently get fewer partitions than planned. ``partitions``
    is the configured count of the keyed topics (None: only check existence).
    """
    counts = partition_counts(bootstrap, names)
    missing = [n for n in names if n not in counts]
    init = f"dossier kafka init --bootstrap {bootstrap}"
    if partitions is not None:
        init += f" --partitions {partitions}"
    if missing:
        raise TopicError(
            f"Kafka at {bootstrap}: topic(s) {', '.join(missing)} missing; topics are never "
            f"created implicitly: run `{init}` first"
        )
    if partitions is None:
        return
    wrong = {
        n: c for n, c in counts.items() if n in names and c != expected_partitions(n, partitions)
    }
    if wrong:
        detail = ", ".join(
            f"{n} has {c} partitions, configured {expected_partitions(n, partitions)}"
            for n, c in sorted(wrong.items())
        )
        raise TopicError(
            f"Kafka at {bootstrap}: {detail}; never repartition a live topic (dossiers would "
            "move between partitions): recreate it empty with "
            f"`{init}`, or set DOSSIER_KAFKA_PARTITIONS to its count"
        )


def require_project_topics(bootstrap: str, names: Sequence[str], settings: Settings) -> None:
    """:func:`require_topics` as every command calls it: each topic must exist, and
    the project's own topics must have the configured partition count
    (:func:`configured_partitions`: ``DOSSIER_KAFKA_PARTITIONS``, else 12;
    ``dossier.digests``: 1)."""
    names = list(names)
    require_topics(bootstrap, names)
    ours = [n for n in names if n in topics.ALL]
    if ours:
        require_topics(bootstrap, ours, configured_partitions(settings))


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


_ENVELOPE_KEY = b'"envelope":'


def encode_stored(position: int, version: int, state: bytes) -> tuple[str, Message]:
    """(dossier id, record) of a stored event, straight from its stored bytes.

    Byte-identical to :func:`encode_event` of the decoded event, at about half
    the cost: the value is the stored envelope's own JSON with ``position`` and
    ``version`` appended, not a re-serialization. The bytes are still parsed
    (for the headers, and to take the general path for an envelope of an older
    schema, which is upcast first, or a stored form this ledger does not write).
    """
    obj = orjson.loads(state)
    env = obj["envelope"]
    if env.get("schema_version") != SCHEMA_VERSION or next(reversed(obj)) != "envelope":
        rec = Recorded(
            position, version, upcast(env) if env.get("schema_version") != SCHEMA_VERSION else env
        )
        return rec.dossier_id, encode_event(rec)
    at = state.find(_ENVELOPE_KEY) + len(_ENVELOPE_KEY)
    value = b'%b,"position":%d,"version":%d}' % (state[at:-2], position, version)
    headers = [
        (HEADER_TYPE, env["type"].encode()),
        (HEADER_SCHEMA_VERSION, str(SCHEMA_VERSION).encode()),
        (HEADER_POSITION, str(position).encode()),
    ]
    did = env["dossier_id"]
    return did, (did.encode(), value, headers)


def read_encoded(
    ledger: DossierLedger, after: int, limit: int
) -> tuple[list[tuple[int, str]], list[Message]]:
    """One page of the log after ``after``, ready to send: ((position, dossier id), record)."""
    pos = ledger._pos_col
    rows = ledger.recorder.query(
        f"SELECT {pos}, originator_version, state FROM {ledger._table} "
        f"WHERE {pos} > ? ORDER BY {pos} LIMIT ?",
        [after, limit],
    )
    where: list[tuple[int, str]] = []
    messages: list[Message] = []
    with paused_gc():  # thousands of short-lived dicts, none cyclic
        for position, version, state in rows:
            did, message = encode_stored(int(position), int(version), bytes(state))
            where.append((int(position), did))
            messages.append(message)
    return where, messages


def decode_event(value: bytes) -> Recorded:
    """A ``dossier.events`` record value back into a :class:`Recorded`."""
    obj = orjson.loads(value)
    position = obj.pop("position")
    version = obj.pop("version", 0)
    return Recorded(int(position), int(version), obj)


def dlq_headers(reason: str, source_topic: str) -> list[tuple[str, bytes]]:
    """Headers of a record sent to ``dossier.dlq``: why, and where it came from."""
    return [(HEADER_REASON, reason.encode()), ("source_topic", source_topic.encode())]
