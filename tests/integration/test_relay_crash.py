"""SIGKILL the relay at random moments while the ledger ingests; nothing is lost or reordered.

The relay runs as a real ``dossier relay`` process following the store and is
killed (SIGKILL, no chance to clean up) and restarted ``KILLS`` times; then one
``dossier relay --once`` finishes the job. The topic must hold every ledger
event, in ledger order per dossier, with no gap and no duplicate after the
consumers' dedupe by position. The larger run is ``python bench/relay_crash.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.kafka import ensure_topics
from simulator.factories import event_stream
from system.harness.crash import run_crash_scenario

pytestmark = pytest.mark.integration

KILLS = 8


def test_relay_survives_sigkill_at_random_moments(fresh_kafka: str, tmp_path: Path):
    ensure_topics(fresh_kafka)
    events = event_stream(400, seed=21)

    result = run_crash_scenario(fresh_kafka, tmp_path / "data", events, kills=KILLS, seed=21)

    print(f"relay crash test: {result.kill_points} kill points tried: {result.as_dict()}")
    assert result.kill_points == KILLS
    assert result.kills_with_lag >= 1  # at least one kill struck with events pending
    assert result.missing == 0
    assert result.out_of_order_dossiers == 0
    assert result.records_on_topic == len(events) + result.duplicates
