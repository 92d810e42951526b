"""Delivering alerts to subscribers: an outbox in the analytics database.

The channels themselves (a webhook POST, a Kafka record) are :mod:`streams.delivery`;
this module keeps what is owed to whom in DuckDB, so that nothing is lost or sent twice.

The embedded runner calls :meth:`Outbox.enqueue` inside the page's transaction:
every new alert, signal and final rolling metric row is matched against the
subscriptions, and one ``deliveries`` row per (subscriber, output) is written
``pending`` (or ``suppressed`` when the subscriber's cooldown holds it back), so
a crash can neither lose a notification nor make a second one. After the
commit, :meth:`Outbox.deliver` sends what is due: a webhook POST (JSON body,
``Idempotency-Key`` = the output id, 2xx = delivered) and/or a Kafka record.
A failure is retried with exponential backoff; after the subscriber's last retry
the delivery moves to the ``dead_letters`` table with the reason: never lost
silently, never sent again after a 2xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb
import orjson
from kafka import KafkaConsumer, KafkaProducer

from ledger import topics
from ledger.kafka import require_topics
from streams import delivery
from streams.subscriptions import Subscriber, matches, subject

DDL = (
    "CREATE TABLE IF NOT EXISTS deliveries (subscriber VARCHAR, output_id VARCHAR, "
    "kind VARCHAR, about VARCHAR, fired_at TIMESTAMPTZ, payload VARCHAR, status VARCHAR, "
    "attempts INTEGER, next_at DOUBLE, last_error VARCHAR, delivered_at TIMESTAMPTZ, "
    "PRIMARY KEY (subscriber, output_id))",
    "CREATE TABLE IF NOT EXISTS dead_letters (subscriber VARCHAR, output_id VARCHAR, "
    "payload VARCHAR, reason VARCHAR, attempts INTEGER, dead_at TIMESTAMPTZ, "
    "PRIMARY KEY (subscriber, output_id))",
)


class Outbox:
    def __init__(
        self,
        con: Any,
        subscribers: list[Subscriber],
        *,
        producer: Callable[[str, bytes, bytes], None] | None = None,
        clock: Callable[[], float] = time.time,
        dead_letter: Callable[[str, str, str, str], None] | None = None,
    ) -> None:
        self.con = con
        self.subscribers = {s.id: s for s in subscribers}
        self.producer = producer
        self.clock = clock
        self.dead_letter = dead_letter
        """Also told of every dead letter (subscriber, output id, payload, reason): the
        distributed deliverer sends them to ``dossier.dlq``."""
        for statement in DDL:
            con.execute(statement)

    # --- inside the page's transaction ------------------------------------------

    def enqueue(self, taken: dict[str, Any]) -> int:
        """Queue the page's outputs for their subscribers (idempotent); return how many."""
        queued = 0
        now = self.clock()
        for table, kind in (
            ("alerts", "alert"),
            ("signals", "signal"),
            ("metrics_daily", "metric"),
        ):
            for row in taken.get(table, ()):
                for sub in self.subscribers.values():
                    if matches(sub, kind, row):
                        queued += self._queue(sub, kind, row, now)
        return queued

    def _queue(self, sub: Subscriber, kind: str, row: dict[str, Any], now: float) -> int:
        output_id, about, at = subject(kind, row)
        status = "pending"
        if sub.cooldown:
            (recent,) = self.con.execute(
                "SELECT count(*) FROM deliveries WHERE subscriber = ? AND about = ? "
                "AND status <> 'suppressed' AND output_id <> ? AND fired_at > ? AND fired_at <= ?",
                [sub.id, about, output_id, at - sub.cooldown, at],
            ).fetchone()
            if recent:
                status = "suppressed"
        payload = orjson.dumps(
            {"type": kind, "subscriber": sub.id, "id": output_id, "data": row}, default=str
        ).decode()
        self.con.execute(
            "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, NULL)",
            [sub.id, output_id, kind, about, at, payload, status, now],
        )
        return 1

    # --- after the commit ----------------------------------------------------------

    def pending(self) -> int:
        (n,) = self.con.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'"
        ).fetchone()
        return int(n)

    def deliver(self, limit: int = 500) -> dict[str, int]:
        """Send the deliveries that are due; return counts by outcome."""
        now = self.clock()
        due = self.con.execute(
            "SELECT subscriber, output_id, payload, attempts FROM deliveries "
            "WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, fired_at LIMIT ?",
            [now, limit],
        ).fetchall()
        counts = {"delivered": 0, "retry": 0, "dead": 0}
        for sub_id, output_id, payload, attempts in due:
            sub = self.subscribers.get(sub_id)
            if sub is None:
                continue  # a subscriber removed from the file: left pending, visible
            error = self._send(sub, output_id, payload.encode())
            if error is None:
                self.con.execute(
                    "UPDATE deliveries SET status = 'delivered', attempts = ?, "
                    "delivered_at = now(), last_error = NULL WHERE subscriber = ? AND output_id = ?",
                    [attempts + 1, sub_id, output_id],
                )
                counts["delivered"] += 1
            elif attempts + 1 > sub.delivery.retries:
                self.con.execute("BEGIN")
                self.con.execute(
                    "UPDATE deliveries SET status = 'dead', attempts = ?, last_error = ? "
                    "WHERE subscriber = ? AND output_id = ?",
                    [attempts + 1, error, sub_id, output_id],
                )
                self.con.execute(
                    "INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?, ?, now())",
                    [sub_id, output_id, payload, error, attempts + 1],
                )
                self.con.execute("COMMIT")
                if self.dead_letter is not None:
                    self.dead_letter(sub_id, output_id, payload, error)
                counts["dead"] += 1
            else:
                delay = sub.delivery.backoff * (2**attempts)
                self.con.execute(
                    "UPDATE deliveries SET attempts = ?, next_at = ?, last_error = ? "
                    "WHERE subscriber = ? AND output_id = ?",
                    [attempts + 1, now + delay, error, sub_id, output_id],
                )
                counts["retry"] += 1
        return counts

    def _send(self, sub: Subscriber, output_id: str, payload: bytes) -> str | None:
        return delivery.send(sub.delivery, output_id, payload, self.producer)


def deliver_from_kafka(
    bootstrap: str,
    db_path: str,
    subscribers: list[Subscriber],
    *,
    group: str = "dossier-alerts",
    once: bool = False,
    idle_seconds: float = 5.0,
    should_stop: Callable[[], bool] = lambda: False,
    session_timeout_ms: int = 6000,
) -> dict[str, int]:
    """The distributed deployment's deliverer: the output topics in a consumer group,
    the outbox in its own DuckDB file, offsets committed after the outbox's commit,
    dead letters also to ``dossier.dlq``."""
    names = {topics.ALERTS: "alerts", topics.SIGNALS: "signals", topics.METRICS: "metrics_daily"}
    own = sorted({s.delivery.kafka_topic for s in subscribers if s.delivery.kafka_topic})
    require_topics(bootstrap, [*names, topics.DLQ, *own])  # never created implicitly
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")

    def send(topic: str, key: bytes, value: bytes) -> None:
        producer.send(topic, key=key, value=value).get(timeout=10)

    def dead(sub_id: str, output_id: str, payload: str, reason: str) -> None:
        producer.send(
            topics.DLQ,
            key=output_id.encode(),
            value=payload.encode(),
            headers=[
                ("reason", f"delivery to {sub_id}: {reason}".encode()),
                ("source_topic", b"delivery"),
            ],
        ).get(timeout=10)

    con = duckdb.connect(db_path)
    outbox = Outbox(con, subscribers, producer=send, dead_letter=dead)
    consumer = KafkaConsumer(
        *names,
        bootstrap_servers=bootstrap.split(","),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 6, 100),
    )
    totals = {"read": 0, "delivered": 0, "retry": 0, "dead": 0}
    last = time.monotonic()
    assigned_at: float | None = None
    try:
        while not should_stop():
            polled = consumer.poll(timeout_ms=500)
            taken: dict[str, list[dict[str, Any]]] = {v: [] for v in names.values()}
            for msgs in polled.values():
                for msg in msgs:
                    taken[names[msg.topic]].append(orjson.loads(msg.value))
            if polled:
                totals["read"] += sum(len(m) for m in polled.values())
                con.execute("BEGIN")
                outbox.enqueue(taken)
                con.execute("COMMIT")
                consumer.commit()
                last = time.monotonic()
            for k, v in outbox.deliver().items():
                totals[k] += v
            if once and consumer.assignment() and not polled and not outbox.pending():
                # idle counts from the assignment at the earliest: a slow group join must
                # not leave the first fetch no time at all (seen in CI: nothing delivered)
                if assigned_at is None:
                    assigned_at = time.monotonic()
                if time.monotonic() - max(last, assigned_at) >= idle_seconds:
                    break
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)
        con.close()
    return totals
