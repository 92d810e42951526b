"""The relay on a real broker (Tansu): exactly the ledger's events, in order, once per run."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.bootstrap import open_ledger
from ledger.kafka import decode_event, ensure_topics, make_producer
from ledger.relay import Relay, RelayError
from ledger.settings import Settings
from simulator.factories import VN, envelope, event_stream, write_jsonl
from system.harness.topic import dedupe, ledger_positions, read_topic

pytestmark = pytest.mark.integration


def _ledger(tmp_path: Path, store: str | None = None):
    return open_ledger(Settings.from_env(tmp_path / "data", store=store))


def _cli(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout.strip().splitlines()[-1])


def _assert_topic_is_ledger(bootstrap: str, ledger, *, grace: float = 1.0) -> list:
    expected = ledger_positions(ledger)
    total = sum(map(len, expected.values()))
    records = read_topic(bootstrap, "dossier.events", total, deadline=30, grace=grace)
    assert len(records) == total  # nothing lost, nothing twice
    kept, skipped = dedupe(records)
    assert skipped == 0
    assert kept == expected  # every dossier, in ledger order
    return records


def test_relay_once_leaves_exactly_the_ledger_on_the_topic(fresh_kafka: str, tmp_path: Path):
    data = tmp_path / "data"
    events = write_jsonl(tmp_path / "e.jsonl", event_stream(120, seed=11))
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(events), "--data-dir", str(data)]).exit_code == 0
    _cli("kafka", "init", "--bootstrap", fresh_kafka)

    report = _cli("relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", str(data))

    ledger = _ledger(tmp_path)
    assert report["published"] == ledger.status()["events"]
    assert report["acknowledged"] == ledger.max_position() == ledger.get_cursor("relay")
    records = _assert_topic_is_ledger(fresh_kafka, ledger)
    by_position = {r.position: r for r in records}
    for rec in ledger.iter_all():
        got = by_position[rec.position]
        assert got.key == rec.dossier_id
        assert got.headers["type"] == rec.type.encode()
        assert got.headers["schema_version"] == b"2"
        assert decode_event(got.raw) == rec  # hash, prev_hash, appended_at and all
    assert len({r.partition for r in records}) > 1  # keyed across the 12 partitions


def test_second_once_publishes_nothing_and_new_events_resume_from_the_cursor(
    fresh_kafka: str, tmp_path: Path
):
    data = str(tmp_path / "data")
    events = event_stream(60, seed=12)
    ledger = _ledger(tmp_path)
    ledger.append_batch(events[:200])
    env = {"DOSSIER_KAFKA_BOOTSTRAP": fresh_kafka}  # configuration from the environment
    _cli("kafka", "init", env=env)

    first = _cli("relay", "--once", "--data-dir", data, env=env)
    again = _cli("relay", "--once", "--data-dir", data, env=env)
    ledger.append_batch(events[200:])
    third = _cli("relay", "--once", "--data-dir", data, env=env)

    assert first["published"] == 200
    assert again["published"] == 0
    assert third["published"] == len(events) - 200
    _assert_topic_is_ledger(fresh_kafka, ledger, grace=2.0)


def test_status_reports_position_acknowledged_and_lag(fresh_kafka: str, tmp_path: Path):
    data = str(tmp_path / "data")
    ledger = _ledger(tmp_path)
    ledger.append_batch(event_stream(20, seed=13))
    n = ledger.max_position()

    before = _cli("relay", "--status", "--data-dir", data)
    _cli("kafka", "init", "--bootstrap", fresh_kafka)
    _cli("relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", data)
    after = _cli("relay", "--status", "--data-dir", data)

    assert (before["position"], before["acknowledged"], before["lag"]) == (n, 0, n)
    assert (after["position"], after["acknowledged"], after["lag"]) == (n, n, 0)


def test_a_crash_between_ack_and_cursor_only_duplicates_and_dedupe_by_position_restores(
    fresh_kafka: str, tmp_path: Path
):
    """At-least-once: a lost cursor write resends a tail; consumers drop it by position."""
    ledger = _ledger(tmp_path)
    ledger.append_batch(event_stream(40, seed=14))
    ensure_topics(fresh_kafka)
    producer = make_producer(fresh_kafka, linger_ms=5)
    relay = Relay(ledger, producer, page=100)
    relay.drain()
    ledger.set_cursor("relay", ledger.max_position() // 3)  # as if the last writes were lost

    resent = relay.drain().published
    producer.close()

    total = ledger.status()["events"]
    records = read_topic(fresh_kafka, "dossier.events", total + resent, deadline=30)
    assert resent == total - total // 3
    assert len(records) == total + resent
    kept, skipped = dedupe(records)
    assert skipped == resent
    assert kept == ledger_positions(ledger)


def test_a_refused_record_stops_the_cursor_just_before_it(fresh_kafka: str, tmp_path: Path):
    ledger = _ledger(tmp_path)
    events = event_stream(10, seed=15)
    ledger.append_batch(events)
    ensure_topics(fresh_kafka)
    big = envelope(  # larger than the producer accepts: refused, never skipped
        random.Random(1),
        events[0]["dossier_id"],
        "FeedbackGiven",
        datetime(2026, 1, 5, 9, 0, tzinfo=VN),
        {"comment": "x" * 20_000},
        role="applicant",
    )
    ledger.append_batch([big])
    ledger.append_batch(event_stream(3, seed=16))
    big_position = ledger.events_of(events[0]["dossier_id"])[-1].position
    producer = make_producer(fresh_kafka, max_request_size=10_000)

    with pytest.raises(RelayError, match=f"position {big_position}"):
        Relay(ledger, producer, page=1000).drain()
    producer.close()

    assert ledger.get_cursor("relay") == big_position - 1


def test_follow_mode_publishes_events_committed_while_it_runs(kafka_bootstrap: str, tmp_path):
    ledger = _ledger(tmp_path)
    topic = f"events-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, partitions=4, names=[topic])
    events = event_stream(30, seed=17)
    ledger.append_batch(events[:50])
    producer = make_producer(kafka_bootstrap, linger_ms=5)
    relay = Relay(ledger, producer, topic=topic, page=20)
    stop = threading.Event()
    worker = threading.Thread(target=relay.follow, args=(0.05, stop))
    worker.start()
    try:
        for i in range(50, len(events), 10):
            ledger.append_batch(events[i : i + 10])
            time.sleep(0.02)
        deadline = time.monotonic() + 20
        while relay.acknowledged() < ledger.max_position() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
        producer.close()
    records = read_topic(kafka_bootstrap, topic, len(events), deadline=30)
    assert relay.acknowledged() == ledger.max_position()
    assert dedupe(records)[0] == ledger_positions(ledger)
    assert len(records) == len(events)


def test_relay_from_postgresql(fresh_kafka: str, pg_url: str, tmp_path: Path):
    ledger = _ledger(tmp_path, store=pg_url)
    ledger.append_batch(event_stream(50, seed=18))
    env = {"DOSSIER_STORE": pg_url}
    _cli("kafka", "init", "--bootstrap", fresh_kafka)

    report = _cli(
        "relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", str(tmp_path), env=env
    )

    assert report["published"] == ledger.status()["events"]
    assert ledger.get_cursor("relay") == ledger.max_position()
    _assert_topic_is_ledger(fresh_kafka, ledger)


def test_plain_kafka_consumer_reads_ordinary_records(fresh_kafka: str, tmp_path: Path):
    """A consumer knowing nothing of this project: group, JSON values, string keys."""
    from kafka import KafkaConsumer

    ledger = _ledger(tmp_path)
    ledger.append_batch(event_stream(15, seed=19))
    _cli("kafka", "init", "--bootstrap", fresh_kafka)
    _cli("relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", str(tmp_path / "data"))
    expected = ledger.status()["events"]

    consumer = KafkaConsumer(
        "dossier.events",
        bootstrap_servers=fresh_kafka,
        group_id="outsider",
        auto_offset_reset="earliest",
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        key_deserializer=bytes.decode,
        value_deserializer=json.loads,
    )
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < expected and time.monotonic() < deadline:
        for msgs in consumer.poll(timeout_ms=500).values():
            seen.extend(msgs)
    consumer.close()

    assert len(seen) == expected
    for m in seen:
        assert m.key == m.value["dossier_id"]
        assert {"position", "hash", "prev_hash", "type", "occurred_at"} <= m.value.keys()
        assert dict(m.headers)["type"].decode() == m.value["type"]


def test_sink_loads_the_topic_into_duckdb_idempotently_by_position(
    fresh_kafka: str, tmp_path: Path
):
    import duckdb

    data = str(tmp_path / "data")
    ledger = _ledger(tmp_path)
    ledger.append_batch(event_stream(40, seed=20))
    ensure_topics(fresh_kafka)
    relay = Relay(ledger, make_producer(fresh_kafka, linger_ms=5))
    relay.drain()
    ledger.set_cursor("relay", 0)
    relay.drain()  # every record twice on the topic: at-least-once at its worst
    relay.producer.close()
    db = tmp_path / "a.duckdb"
    kafka_args = ["sink", "--source", "kafka", "--bootstrap", fresh_kafka, "--db", str(db)]
    kafka_args += ["--once", "--idle", "1.5", "--data-dir", data]

    first = _cli(*kafka_args)
    again = _cli(*kafka_args)  # same group: offsets were committed after the DuckDB commit
    store = _cli(
        "sink", "--source", "store", "--db", str(tmp_path / "s.duckdb"), "--data-dir", data
    )

    total = ledger.status()["events"]
    assert (first["read"], first["loaded"], first["duplicates"]) == (2 * total, total, total)
    assert again["read"] == 0
    assert store["loaded"] == total
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT position, dossier_id, type, hash, prev_hash, typeof(occurred_at), data->>'$.step' "
        "FROM events ORDER BY position"
    ).fetchall()
    con.close()
    want = list(ledger.iter_all())
    assert [r[0] for r in rows] == [w.position for w in want]
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        (w.dossier_id, w.type, w.envelope["hash"], w.envelope["prev_hash"]) for w in want
    ]
    assert {r[5] for r in rows} == {"TIMESTAMP WITH TIME ZONE"}
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con2:
        assert con2.execute("SELECT count(*), max(position) FROM events").fetchone() == (
            total,
            ledger.max_position(),
        )


def test_simulate_ingest_relay_once_leaves_exactly_the_ledger(fresh_kafka: str, tmp_path: Path):
    """The issue's end-to-end check, on the simulator's output (once it exists)."""
    simulator = pytest.importorskip("simulator")
    if not hasattr(simulator, "simulate"):
        pytest.skip("simulator.simulate is not written yet")
    data = str(tmp_path / "data")
    events = tmp_path / "sim.jsonl"
    runner = CliRunner()
    sim = runner.invoke(main, ["simulate", "--days", "2", "--seed", "3", "--out", str(events)])
    assert sim.exit_code == 0, sim.output
    runner.invoke(main, ["ingest", str(events), "--data-dir", data])  # rejects are the sim's
    _cli("kafka", "init", "--bootstrap", fresh_kafka)

    first = _cli("relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", data)
    second = _cli("relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", data)

    ledger = _ledger(tmp_path)
    assert first["published"] == ledger.status()["events"] > 0
    assert second["published"] == 0
    _assert_topic_is_ledger(fresh_kafka, ledger, grace=2.0)


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_both_clients_put_a_dossier_in_the_java_clients_partition(
    kafka_bootstrap: str, tmp_path: Path, client: str
):
    """Switching the relay's client must not move dossiers between partitions."""
    from kafka.partitioner import murmur2

    ledger = _ledger(tmp_path)
    ledger.append_batch(event_stream(30, seed=21))
    topic = f"events-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, partitions=12, names=[topic])
    producer = make_producer(kafka_bootstrap, client, linger_ms=5)
    report = Relay(ledger, producer, topic=topic, cursor=f"c-{topic}", page=50).drain()
    producer.close()

    records = read_topic(kafka_bootstrap, topic, report.published, deadline=30)
    assert len(records) == report.published == ledger.status()["events"]
    for r in records:
        assert r.partition == (murmur2(r.key.encode()) & 0x7FFFFFFF) % 12, r.key


def test_records_built_from_stored_bytes_equal_the_decoded_encoding(tmp_path: Path):
    """The relay's fast path (stored bytes spliced) sends exactly encode_event's bytes."""
    from ledger.kafka import encode_event, read_encoded

    ledger = _ledger(tmp_path)
    ledger.append_batch(event_stream(40, seed=22))
    where, messages = read_encoded(ledger, 0, 10_000)

    expected = [encode_event(rec) for rec in ledger.iter_all()]
    assert messages == expected
    assert where == [(rec.position, rec.dossier_id) for rec in ledger.iter_all()]


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_publishers_take_the_single_record_form_too(kafka_bootstrap: str, client: str):
    """``send(topic, key=, value=, headers=)`` then ``flush()``: how the sink sends to the DLQ."""
    topic = f"dlq-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, partitions=1, names=[topic])
    producer = make_producer(kafka_bootstrap, client)
    producer.send(topic, key=b"k", value=b"junk", headers=[("reason", b"why")])
    producer.flush()
    producer.close()

    (record,) = read_topic_raw(kafka_bootstrap, topic)
    assert (record.key, record.value, dict(record.headers)) == (b"k", b"junk", {"reason": b"why"})


def read_topic_raw(bootstrap: str, topic: str) -> list:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        out: list = []
        deadline = time.monotonic() + 15
        while not out and time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=300).values():
                out.extend(msgs)
        return out
    finally:
        consumer.close()
