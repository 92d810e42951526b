"""Rebuild in ranges of bounded size: memory flat in the log's length, same read models."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.bootstrap import open_ledger
from ledger.config import Settings
from projections import runner
from projections.runner import Projector, range_weights, rebuild
from projections.store import SQLiteReadModels
from tests.projection_factories import province

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dossiers", [0, 10, 4_999, 70_000, 2_600_000])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_no_range_exceeds_the_bound(dossiers: int, workers: int) -> None:
    weights = range_weights(dossiers, workers)
    assert len(weights) % workers == 0
    assert dossiers * max(weights) / sum(weights) <= runner.MAX_RANGE_DOSSIERS
    assert weights[-len(runner.RANGE_WEIGHTS) * workers :] == [
        w for w in runner.RANGE_WEIGHTS for _ in range(workers)
    ]


def test_small_ranges_rebuild_the_same_read_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = open_ledger(Settings.from_env(tmp_path / "data"))
    try:
        assert not led.append_batch(province(150, seed=5)).rejected
        sums = []
        for name, bound, workers in (("whole", 10**9, 1), ("r1", 7, 1), ("r2", 7, 2)):
            monkeypatch.setattr(runner, "MAX_RANGE_DOSSIERS", bound)
            monkeypatch.setattr(runner, "MIN_DOSSIERS_TO_FORK", 0)
            store = SQLiteReadModels(tmp_path / f"{name}.sqlite3")
            report = rebuild(led, Projector(store, led.rules), workers=workers)
            assert report.dossiers == 150
            sums.append(store.checksum())
            store.close()
        assert sums[0] == sums[1] == sums[2]
    finally:
        led.close()
        led.keys.close()
