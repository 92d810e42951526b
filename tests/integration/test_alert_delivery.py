"""Alert delivery to a webhook: every alert arrives, none twice after a 2xx, across a
30 s outage; a second run delivers nothing again; a dead webhook ends in the
dead-letter table, never lost silently."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from ledger.settings import Settings
from system.harness.tansu import free_port
from system.process import process
from tests.streams_data import simulated_ledger

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver that can be down (connection refused) and counts 2xx answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted: Counter[str] = Counter()
        self.bodies: dict[str, dict] = {}
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                receiver.accepted[key] += 1
                receiver.bodies[key] = json.loads(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def subscriptions(path: Path, port: int, retries: int) -> Path:
    path.write_text(
        f"""
[[subscriber]]
id = "inspector"
levels = ["due", "three_quarters"]
signals = ["repeated_supplement", "refusal_without_reason"]
replayed = true
[subscriber.delivery]
webhook = "http://127.0.0.1:{port}/hook"
retries = {retries}
backoff = "1s"
""",
        encoding="utf-8",
    )
    return path


def test_every_alert_once_across_an_outage(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "data")
    simulated_ledger(settings, days=3, seed=4)
    port = free_port()
    subs = subscriptions(tmp_path / "subs.toml", port, retries=8)
    receiver = Receiver(port)
    threading.Timer(30.0, receiver.start).start()  # down for the first 30 s
    try:
        started = time.monotonic()
        summary = process(settings, subscriptions=subs)
        assert time.monotonic() - started >= 30.0
        second = process(settings, subscriptions=subs)  # nothing new, nothing again
    finally:
        receiver.stop()
    con = duckdb.connect(str(settings.data_dir / "analytics.duckdb"), read_only=True)
    expected = {
        r[0]
        for r in con.execute(
            "SELECT alert_id FROM alerts WHERE kind = 'deadline' AND level IN ('due', 'three_quarters') "
            "UNION SELECT signal_id FROM signals WHERE kind IN ('repeated_supplement', 'refusal_without_reason')"
        ).fetchall()
    }
    assert expected, "the province should raise some alerts"
    assert set(receiver.accepted) == expected
    assert max(receiver.accepted.values()) == 1
    assert summary["deliveries"]["delivered"] == len(expected)
    assert summary["deliveries"]["retry"] > 0
    assert second.get("deliveries", {}).get("delivered", 0) == 0
    statuses = dict(con.execute("SELECT status, count(*) FROM deliveries GROUP BY 1").fetchall())
    assert statuses == {"delivered": len(expected)}


def test_a_dead_webhook_ends_in_the_dead_letter_table(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "data")
    simulated_ledger(settings, days=2, seed=5)
    subs = subscriptions(tmp_path / "subs.toml", free_port(), retries=1)
    summary = process(settings, subscriptions=subs)
    con = duckdb.connect(str(settings.data_dir / "analytics.duckdb"), read_only=True)
    (dead,) = con.execute("SELECT count(*) FROM dead_letters").fetchone()
    (queued,) = con.execute("SELECT count(*) FROM deliveries").fetchone()
    assert dead == queued > 0
    assert summary["deliveries"]["dead"] == dead
    (reason,) = con.execute("SELECT min(reason) FROM dead_letters").fetchone()
    assert "webhook http://127.0.0.1" in reason


def test_distributed_delivery_from_the_alert_topic(fresh_kafka: str, tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from analytics.outbox import deliver_from_kafka
    from ledger import topics
    from streams.outputs import alert
    from streams.subscriptions import parse

    admin = KafkaAdminClient(bootstrap_servers=fresh_kafka)
    admin.create_topics(
        [NewTopic(t, 2, 1) for t in (topics.ALERTS, topics.SIGNALS, topics.METRICS, topics.DLQ)]
    )
    admin.close()
    rows = [
        alert(
            "deadline",
            "due",
            anchor=f"2025-09-1{i}T17:00:00+07:00",
            fired_at=f"2025-09-1{i}T17:00:00+07:00",
            recipients=["inspector:A"],
            replayed=False,
            params={},
            dossier_id=f"D{i}",
            agency="A",
            due_at=f"2025-09-1{i}T17:00:00+07:00",
        )
        for i in range(3)
    ]
    producer = KafkaProducer(bootstrap_servers=fresh_kafka, acks="all")
    for row in rows + rows[:1]:  # one redelivered by an at-least-once worker
        producer.send(topics.ALERTS, key=row["alert_id"].encode(), value=json.dumps(row).encode())
    producer.flush()
    producer.close()
    live, dead = free_port(), free_port()
    receiver = Receiver(live)
    receiver.start()
    subscribers = parse(
        f"""
[[subscriber]]
id = "live"
levels = ["due"]
[subscriber.delivery]
webhook = "http://127.0.0.1:{live}/"
[[subscriber]]
id = "gone"
levels = ["due"]
[subscriber.delivery]
webhook = "http://127.0.0.1:{dead}/"
retries = 0
"""
    )
    try:
        totals = deliver_from_kafka(
            fresh_kafka,
            str(tmp_path / "deliveries.duckdb"),
            subscribers,
            group="g1",
            once=True,
            idle_seconds=2,
        )
    finally:
        receiver.stop()
    assert set(receiver.accepted) == {r["alert_id"] for r in rows}
    assert max(receiver.accepted.values()) == 1
    assert totals["dead"] == 3
    consumer = KafkaConsumer(
        topics.DLQ,
        bootstrap_servers=fresh_kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    reasons = [dict(m.headers)["reason"].decode() for m in consumer]
    consumer.close()
    assert len(reasons) == 3 and all(r.startswith("delivery to gone: webhook") for r in reasons)
