"""The distributed path at once: 4 writers, the relay, 2 projection workers and 2
stream workers on one PostgreSQL and one Kafka broker (Tansu); nothing lost or
reordered per dossier. A small province here; ``python bench/scale.py
--distributed`` runs the same scenario on 1,000,000 events."""

from __future__ import annotations

from pathlib import Path

import pytest

from system.harness.distributed import run

pytestmark = pytest.mark.integration


def test_writers_relay_and_workers_lose_and_reorder_nothing(
    pg_url: str, fresh_kafka: str, tmp_path: Path
) -> None:
    figures = run(tmp_path, events=6_000, pg_url=pg_url, bootstrap=fresh_kafka, deadline=240)
    assert figures["events"] > 4_000 and figures["dossiers"] > 400
    assert figures["control_sheet_rows"] > figures["dossiers"]
    assert figures["topic_records"] >= figures["events"]
