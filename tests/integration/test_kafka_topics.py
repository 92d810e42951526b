"""``dossier kafka init`` on a real broker: the five topics, idempotently."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from ledger import topics
from ledger.cli import main
from ledger.kafka import partition_counts

pytestmark = pytest.mark.integration


def _init(*args: str, env: dict[str, str] | None = None) -> dict:
    result = CliRunner().invoke(main, ["kafka", "init", *args], env=env)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_init_creates_every_topic_with_twelve_partitions_by_default(fresh_kafka: str):
    out = _init("--bootstrap", fresh_kafka)

    assert out["topics"] == {name: "created" for name in topics.ALL}
    assert set(topics.ALL) == {
        "dossier.events",
        "dossier.alerts",
        "dossier.signals",
        "dossier.metrics",
        "dossier.dlq",
    }
    assert partition_counts(fresh_kafka, topics.ALL) == {name: 12 for name in topics.ALL}


def test_init_is_idempotent_and_never_repartitions(fresh_kafka: str):
    _init("--bootstrap", fresh_kafka, "--partitions", "6")

    again = _init("--bootstrap", fresh_kafka, "--partitions", "3")

    assert again["topics"] == {name: "exists" for name in topics.ALL}
    assert partition_counts(fresh_kafka, [topics.EVENTS]) == {topics.EVENTS: 6}


def test_init_reads_the_bootstrap_from_the_environment(fresh_kafka: str):
    out = _init(env={"DOSSIER_KAFKA_BOOTSTRAP": fresh_kafka})

    assert out["topics"][topics.EVENTS] == "created"


def test_init_without_a_bootstrap_is_a_usage_error():
    result = CliRunner().invoke(main, ["kafka", "init"], env={"DOSSIER_KAFKA_BOOTSTRAP": ""})

    assert result.exit_code == 2
    assert "DOSSIER_KAFKA_BOOTSTRAP" in result.output
