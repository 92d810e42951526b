"""The Kafka projection runner: a consumer group on a real broker (Tansu), two workers.

Records are produced here the way the relay produces them (``ledger.kafka.encode_event``:
key = dossier id, value = envelope + ``position``), some of them twice. The read
models built by two workers sharing the partitions must equal a rebuild from the log.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import open_ledger
from ledger.kafka import encode_event
from ledger.settings import Settings
from projections.kafka_runner import BadRecord, run_kafka
from projections.runner import Projector, rebuild
from projections.store import SQLiteReadModels
from tests.projection_factories import province

pytestmark = pytest.mark.integration

READ_MODELS = ("rm_dossiers", "rm_control_sheet", "rm_workload")


def make_topic(bootstrap: str, partitions: int = 4) -> str:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"events-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def produce(bootstrap: str, topic: str, records: list[Any], raw: list[bytes] = ()) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for rec in records:
            key, value, headers = encode_event(rec)
            producer.send(topic, key=key, value=value, headers=headers)
        for value in raw:
            producer.send(topic, key=b"junk", value=value)
        producer.flush(30)
    finally:
        producer.close()


def wait_for_checkpoints(path: Path, topic: str, total: int, timeout: float = 90) -> None:
    """Until the read models' Kafka checkpoints add up to ``total`` records."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        store = SQLiteReadModels(path)
        try:
            if sum(store.positions(f"kafka:{topic}:").values()) >= total:
                return
        finally:
            store.close()
        time.sleep(0.2)
    raise AssertionError(f"the workers did not reach {total} records in {timeout} s")


def test_two_workers_split_partitions_and_match_a_rebuild(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(tmp_path / "data")
    led = open_ledger(settings)
    try:
        assert not led.append_batch(province(80, seed=21)).rejected
        stored = list(led.iter_all())
        expected_store = SQLiteReadModels(tmp_path / "expected.sqlite3")
        rebuild(led, Projector(expected_store, led.rules))
        expected = expected_store.checksum(READ_MODELS)
        rules = led.rules
    finally:
        led.close()
        led.keys.close()

    topic = make_topic(kafka_bootstrap)
    group = f"proj-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "readmodels.sqlite3"
    SQLiteReadModels(path).close()  # create the tables before the workers race
    reports: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    done = threading.Event()
    taken = [0, 0]  # records each worker's projector was given

    def worker(k: int) -> None:
        store = SQLiteReadModels(path)
        projector = Projector(store, rules)
        apply = projector.apply

        def counted(records: list[Any], tracking: dict[str, int]) -> int:
            taken[k] += len(records)
            return apply(records, tracking)

        projector.apply = counted  # type: ignore[method-assign]
        try:
            reports.append(
                run_kafka(
                    projector,
                    bootstrap=kafka_bootstrap,
                    group=group,
                    settings=settings,
                    topic=topic,
                    batch_size=100,
                    session_timeout_ms=3000,
                    should_stop=done.is_set,
                )
            )
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            errors.append(e)
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    # every record once, then the first 60 again (at-least-once redelivery); a few at a
    # time until both workers have had some (the second joins while the first works),
    # then the rest
    records = stored + stored[:60]
    sent = 0
    while sent < len(records) and not all(taken):
        produce(kafka_bootstrap, topic, records[sent : sent + 10])
        sent += 10
        time.sleep(0.3)
    produce(kafka_bootstrap, topic, records[sent:])
    wait_for_checkpoints(path, topic, len(stored) + 60)
    done.set()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert len(reports) == 2 and all(r["records"] > 0 for r in reports), reports  # split
    assert sum(r["records"] for r in reports) >= len(stored) + 60
    assert sum(r["applied"] for r in reports) == len(stored)  # duplicates skipped
    result = SQLiteReadModels(path)
    try:
        assert result.checksum(READ_MODELS) == expected
        checkpoints = result.positions(f"kafka:{topic}:")
        assert len(checkpoints) == 4 and sum(checkpoints.values()) == len(stored) + 60
    finally:
        result.close()
        expected_store.close()

    # A restarted worker resumes from the stored checkpoints: nothing new to apply.
    store = SQLiteReadModels(path)
    try:
        again = run_kafka(
            Projector(store, rules),
            bootstrap=kafka_bootstrap,
            group=f"proj-{uuid.uuid4().hex[:8]}",
            settings=settings,
            topic=topic,
            once=True,
            idle_timeout=3.0,
            session_timeout_ms=3000,
        )
        assert again["records"] == 0 and again["applied"] == 0
    finally:
        store.close()


def test_a_bad_record_stops_the_worker_naming_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = make_topic(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topic, [], raw=[b"not json"])
    store = SQLiteReadModels(tmp_path / "rm.sqlite3")
    settings = Settings.from_env(tmp_path / "data")
    led = open_ledger(settings)
    try:
        with pytest.raises(BadRecord, match=rf"{topic}\[0\]@0"):
            run_kafka(
                Projector(store, led.rules),
                bootstrap=kafka_bootstrap,
                group=f"proj-{uuid.uuid4().hex[:8]}",
                settings=settings,
                topic=topic,
                once=True,
                idle_timeout=3.0,
                session_timeout_ms=3000,
            )
        assert store.positions("kafka:") == {}
    finally:
        store.close()
        led.close()
        led.keys.close()
