"""Parity: one simulated province through the embedded runner and through two
``dossier worker`` processes on a real broker (Tansu) gives identical signals,
alerts and metric rows.

The workers read ``dossier.events`` as the relay published it; at the end both
sides are told the same "now" (``dossier process --now`` and ``dossier tick
--now``), so every deadline up to it has passed on both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

pytestmark = pytest.mark.integration

NOW = "2025-11-30"
CLI = [sys.executable, "-c", "from cli.main import main; main()"]
OUTPUTS = ("dossier.signals", "dossier.alerts", "dossier.metrics", "dossier.dlq")


def dossier(*args: str, env: dict[str, str], check: bool = True) -> str:
    done = subprocess.run(
        [*CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"dossier {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


class Outputs:
    """The output topics read from the start, last value per key (as a table would)."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=500
        )
        self.consumer.subscribe(list(OUTPUTS))
        self.last: dict[str, dict[bytes, Any]] = {t: {} for t in OUTPUTS}
        self.records = 0

    def drain(self) -> int:
        n = 0
        for msg in self.consumer:
            if msg.topic == "dossier.dlq":  # every dead letter, with its reason
                self.last[msg.topic][msg.offset] = dict(msg.headers)["reason"].decode()
            else:
                self.last[msg.topic][msg.key] = orjson.loads(msg.value)
            n += 1
        self.records += n
        return n

    def settle(self, quiet: float = 12.0, limit: float = 240.0) -> None:
        """Read until nothing new arrived for ``quiet`` seconds (never from end offsets)."""
        deadline = time.monotonic() + limit
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if self.drain():
                last_new = time.monotonic()
            elif time.monotonic() - last_new >= quiet and self.records:
                return
        raise AssertionError(f"outputs did not settle in {limit} s ({self.records} records)")


def count_events(data: Path) -> int:
    from ledger.bootstrap import open_ledger
    from ledger.settings import Settings

    led = open_ledger(Settings.from_env(data))
    try:
        return led.max_position()
    finally:
        led.close()
        led.keys.close()


def wait_consumed(bootstrap: str, group: str, records: int, limit: float = 300.0) -> None:
    """Until the workers' group has committed every record of dossier.events: a tick
    must come after the events it closes (ticks and events are separate topics)."""
    from kafka import KafkaConsumer, TopicPartition

    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    parts = [
        TopicPartition("dossier.events", p) for p in reader.partitions_for_topic("dossier.events")
    ]
    deadline = time.monotonic() + limit
    done = 0
    try:
        while time.monotonic() < deadline:
            done = sum(reader.committed(tp) or 0 for tp in parts)
            if done >= records:
                return
            time.sleep(1.0)
    finally:
        reader.close(autocommit=False)
    raise AssertionError(f"the workers consumed {done} of {records} records in {limit} s")


def produce_bad_records(bootstrap: str, data: Path) -> None:
    """Three records the workers must dead-letter and survive: not JSON, an unknown
    type, and an event whose prev_hash is not its dossier's last hash."""
    from kafka import KafkaProducer

    from ledger.bootstrap import open_ledger
    from ledger.kafka import encode_event
    from ledger.settings import Settings

    led = open_ledger(Settings.from_env(data))
    try:  # a dossier still open at the end: the workers keep its state (and its last hash)
        last: dict[str, Any] = {}
        ended: set[str] = set()
        for r in led.iter_all():
            last[r.envelope["dossier_id"]] = r
            if r.envelope["type"] in ("ResultReturned", "DossierWithdrawn"):
                ended.add(r.envelope["dossier_id"])
        rec = next(r for did, r in sorted(last.items()) if did not in ended)
    finally:
        led.close()
        led.keys.close()
    forged = dict(rec.envelope, event_id=str(uuid.uuid4()), type="StepCompleted")
    forged["data"] = {"step": "intake"}
    forged["prev_hash"] = "0" * 64
    unknown = dict(forged, type="Teleported", prev_hash=rec.envelope["hash"])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        key = rec.envelope["dossier_id"].encode()
        producer.send("dossier.events", key=key, value=b"{not json")
        for i, env in enumerate((forged, unknown)):
            fake = type(rec)(10**9 + i, rec.version + 1 + i, env)
            _, value, headers = encode_event(fake)
            producer.send("dossier.events", key=key, value=value, headers=headers)
        producer.flush(30)
    finally:
        producer.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def metric_key(r: dict[str, Any]) -> tuple[str, ...]:
    return (str(r["day"]), r["window"], r["scope"], r["key"])


FIELDS = (
    "received",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "open_within",
    "open_overdue",
    "late_events",
    "final",
)


def test_embedded_and_two_workers_agree(fresh_kafka: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DOSSIER_KAFKA_BOOTSTRAP": fresh_kafka,
        "DOSSIER_KAFKA_PARTITIONS": "4",
        "DOSSIER_PROGRESS": "off",
    }
    env.pop("DOSSIER_STORE", None)
    data = tmp_path / "data"
    events = tmp_path / "e.jsonl"
    dossier("simulate", "--days", "4", "--seed", "11", "--out", str(events), env=env)
    dossier("ingest", str(events), "--data-dir", str(data), env=env)
    dossier("kafka", "init", "--partitions", "4", "--data-dir", str(data), env=env, check=False)
    dossier("relay", "--once", "--data-dir", str(data), env=env)
    produce_bad_records(fresh_kafka, data)

    app_id = f"parity-{uuid.uuid4().hex[:8]}"
    workers = [
        subprocess.Popen(
            [*CLI, "worker", "--app-id", app_id, "--data-dir", str(data)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"worker{i}.log", "wb"),  # noqa: SIM115
        )
        for i in range(2)
    ]
    try:
        out = Outputs(fresh_kafka)
        wait_consumed(fresh_kafka, app_id, count_events(data) + 3)  # + the 3 bad records
        out.settle()
        dossier("tick", "--now", NOW, env=env)
        out.settle()
        for w in workers:
            assert w.poll() is None, (tmp_path / "worker0.log").read_text()[-3000:]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()

    dossier("process", "--now", NOW, "--data-dir", str(data), env=env)
    con = duckdb.connect(str(data / "analytics.duckdb"), read_only=True)
    reasons = sorted(out.last["dossier.dlq"].values())
    assert len(reasons) == 3, reasons
    assert any("breaks its chain" in r for r in reasons)
    assert any("unknown event type 'Teleported'" in r for r in reasons)
    assert any("dossier.events[" in r for r in reasons)
    embedded_signals = {r["signal_id"]: r for r in rows(con, "SELECT * FROM signals")}
    kafka_signals = {v["signal_id"]: v for v in out.last["dossier.signals"].values()}
    assert embedded_signals and set(kafka_signals) == set(embedded_signals)
    embedded_alerts = {r["alert_id"]: r for r in rows(con, "SELECT * FROM alerts")}
    kafka_alerts = {v["alert_id"]: v for v in out.last["dossier.alerts"].values()}
    assert embedded_alerts and set(kafka_alerts) == set(embedded_alerts)
    for aid, a in embedded_alerts.items():
        assert (a["level"], a["replayed"]) == (
            kafka_alerts[aid]["level"],
            kafka_alerts[aid]["replayed"],
        )
    embedded_metrics = {metric_key(r): r for r in rows(con, "SELECT * FROM metrics_daily")}
    kafka_metrics = {metric_key(v): v for v in out.last["dossier.metrics"].values()}
    assert set(kafka_metrics) == set(embedded_metrics)
    assert any(r["final"] for r in embedded_metrics.values())
    for key, r in embedded_metrics.items():
        assert {f: r[f] for f in FIELDS} == {f: kafka_metrics[key][f] for f in FIELDS}, key


def test_a_worker_refuses_to_start_without_its_topics(fresh_kafka: str, tmp_path: Path) -> None:
    env = {**os.environ, "DOSSIER_KAFKA_BOOTSTRAP": fresh_kafka, "DOSSIER_PROGRESS": "off"}
    done = subprocess.run(
        [*CLI, "worker", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "missing" in done.stderr and "dossier kafka init" in done.stderr
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=fresh_kafka)
    try:
        assert not {t for t in consumer.topics() if t.startswith("dossier.")}  # nothing created
    finally:
        consumer.close()
