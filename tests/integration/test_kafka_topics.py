"""Topics are created once, on purpose: ``dossier kafka init``, and refusals everywhere else."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger import topics
from ledger.bootstrap import open_ledger
from ledger.kafka import (
    TopicError,
    ensure_topics,
    make_admin,
    partition_counts,
    require_topics,
)
from ledger.settings import Settings
from simulator.factories import event_stream

pytestmark = pytest.mark.integration

KEYED = tuple(t for t in topics.ALL if t != topics.DIGESTS)


def _init(*args: str, env: dict[str, str] | None = None, code: int = 0) -> dict:
    result = CliRunner().invoke(main, ["kafka", "init", *args], env=env)
    assert result.exit_code == code, result.output
    return orjson.loads(result.stdout)


def _broker_topics(bootstrap: str) -> set[str]:
    admin = make_admin(bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_init_creates_every_topic_with_twelve_partitions_by_default(fresh_kafka: str):
    out = _init("--bootstrap", fresh_kafka)

    assert out["topics"] == {name: "created" for name in topics.ALL}
    assert set(topics.ALL) >= {
        "dossier.events",
        "dossier.alerts",
        "dossier.signals",
        "dossier.metrics",
        "dossier.dlq",
        "dossier.digests",
    }
    assert partition_counts(fresh_kafka, topics.ALL) == {name: 12 for name in KEYED} | {
        topics.DIGESTS: 1  # one ordered series
    }


def test_init_is_idempotent_and_reports_a_mismatch_instead_of_exists(fresh_kafka: str):
    _init("--bootstrap", fresh_kafka, "--partitions", "6")

    again = _init("--bootstrap", fresh_kafka, "--partitions", "6")
    other = CliRunner().invoke(
        main, ["kafka", "init", "--bootstrap", fresh_kafka, "--partitions", "3"]
    )

    assert again["topics"] == {name: "exists" for name in topics.ALL}
    assert other.exit_code == 1
    out = orjson.loads(other.stdout)
    assert out["topics"] == {name: "mismatch" for name in KEYED} | {topics.DIGESTS: "exists"}
    assert out["mismatches"][topics.EVENTS] == {"partitions": 6, "expected": 3}
    assert "MISMATCH: dossier.events has 6 partitions, expected 3" in other.stderr
    assert partition_counts(fresh_kafka, [topics.EVENTS]) == {topics.EVENTS: 6}  # never changed


def test_init_reads_bootstrap_and_partitions_from_the_environment(fresh_kafka: str, tmp_path):
    env = {"DOSSIER_KAFKA_BOOTSTRAP": fresh_kafka, "DOSSIER_KAFKA_PARTITIONS": "5"}
    out = _init("--data-dir", str(tmp_path / "d"), env=env)

    assert out["topics"][topics.EVENTS] == "created" and out["partitions"] == 5
    assert partition_counts(fresh_kafka, [topics.EVENTS]) == {topics.EVENTS: 5}


def test_init_without_a_bootstrap_is_a_usage_error():
    result = CliRunner().invoke(main, ["kafka", "init"], env={"DOSSIER_KAFKA_BOOTSTRAP": ""})

    assert result.exit_code == 2
    assert "DOSSIER_KAFKA_BOOTSTRAP" in result.output


def test_relay_refuses_a_missing_topic_and_creates_nothing(fresh_kafka: str, tmp_path: Path):
    data = tmp_path / "data"
    open_ledger(Settings.from_env(data)).append_batch(event_stream(5, seed=3))

    result = CliRunner().invoke(
        main, ["relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", str(data)]
    )

    assert result.exit_code == 1
    assert "dossier.events missing" in result.output
    assert "dossier kafka init" in result.output
    assert _broker_topics(fresh_kafka) == set()  # the broker auto-creates; nothing asked it to
    assert open_ledger(Settings.from_env(data)).get_cursor("relay") == 0


def test_relay_refuses_a_topic_with_another_partition_count(fresh_kafka: str, tmp_path: Path):
    ensure_topics(fresh_kafka, partitions=4, names=[topics.EVENTS])  # as an auto-create would
    data = tmp_path / "data"
    open_ledger(Settings.from_env(data)).append_batch(event_stream(5, seed=3))

    result = CliRunner().invoke(
        main, ["relay", "--once", "--bootstrap", fresh_kafka, "--data-dir", str(data)]
    )

    assert result.exit_code == 1
    assert "dossier.events has 4 partitions, configured 12" in result.output


def test_require_topics_names_what_is_wrong(fresh_kafka: str):
    ensure_topics(fresh_kafka, partitions=3, names=[topics.EVENTS, topics.DIGESTS])

    require_topics(fresh_kafka, [topics.EVENTS, topics.DIGESTS], 3)  # digests: always 1
    with pytest.raises(TopicError, match="dossier.alerts missing"):
        require_topics(fresh_kafka, [topics.EVENTS, topics.ALERTS])
    with pytest.raises(TopicError, match="dossier.events has 3 partitions, configured 12"):
        require_topics(fresh_kafka, [topics.EVENTS], 12)
    assert topics.ALERTS not in _broker_topics(fresh_kafka)


def test_consumers_refuse_a_missing_topic(fresh_kafka: str, tmp_path: Path):
    data = str(tmp_path / "data")
    for args in (
        ["project", "--source", "kafka", "--once"],
        ["sink", "--source", "kafka", "--once", "--db", str(tmp_path / "a.duckdb")],
    ):
        result = CliRunner().invoke(main, [*args, "--bootstrap", fresh_kafka, "--data-dir", data])
        assert result.exit_code != 0, args
        assert "missing" in result.output and "dossier.events" in result.output, result.output
    assert _broker_topics(fresh_kafka) == set()
