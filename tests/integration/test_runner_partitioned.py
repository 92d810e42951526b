"""The partitioned rebuild: forked workers, each reading and deriving its own dossier ranges.

The read models must be byte-identical whatever the number of workers, equal to
the in-order rebuild (the path PostgreSQL ledgers take), bounded by the log's
end when the rebuild started, and a worker must never outlive the rebuild.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import projections.runner as runner
from ledger.application import DossierLedger
from ledger.bootstrap import open_ledger
from ledger.config import Settings
from ledger.log_reader import LogSource, ranges
from projections.runner import STORE_TRACKING, Projector, rebuild
from projections.store import SQLiteReadModels
from tests.projection_factories import province

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DossierLedger]:
    led = open_ledger(Settings.from_env(tmp_path_factory.mktemp("partitioned") / "data"))
    assert not led.append_batch(province(150, seed=5)).rejected
    try:
        yield led
    finally:
        led.close()
        led.keys.close()


@pytest.fixture
def always_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fork workers even for a small test log."""
    monkeypatch.setattr(runner, "MIN_DOSSIERS_TO_FORK", 0)


def checksum(ledger: DossierLedger, path: Path, **kwargs: int) -> str:
    store = SQLiteReadModels(path)
    try:
        report = rebuild(ledger, Projector(store, ledger.rules), **kwargs)
        assert report.position == ledger.max_position()
        assert store.position(STORE_TRACKING) == report.position
        return store.checksum()
    finally:
        store.close()


def test_any_number_of_workers_gives_the_same_read_models(
    ledger: DossierLedger, tmp_path: Path, always_fork: None
) -> None:
    sums = {w: checksum(ledger, tmp_path / f"w{w}.sqlite3", workers=w) for w in (1, 2, 3)}
    assert len(set(sums.values())) == 1, sums


def test_partitioned_equals_the_in_order_rebuild(
    ledger: DossierLedger, tmp_path: Path, always_fork: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    partitioned = checksum(ledger, tmp_path / "ranges.sqlite3", workers=2)
    monkeypatch.setattr(runner.LogSource, "of", classmethod(lambda cls, led: None))
    in_order = checksum(ledger, tmp_path / "in_order.sqlite3", workers=2)
    assert partitioned == in_order


def test_workers_end_even_when_the_parent_catches_sigterm(
    ledger: DossierLedger, tmp_path: Path, always_fork: None
) -> None:
    """``dossier project`` installs a SIGTERM flag handler; forked workers must not keep it
    (they would ignore ``Pool.terminate`` and the rebuild would hang)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        checksum(ledger, tmp_path / "a.sqlite3", workers=2)
        checksum(ledger, tmp_path / "b.sqlite3", workers=2)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_ranges_cover_every_dossier_once(ledger: DossierLedger) -> None:
    source = LogSource.of(ledger)
    assert source is not None
    conn = source.connect()
    try:
        upto = source.upto(conn)
        ids = source.first_ids(conn, upto)
        seen: list[int] = []
        for lo, hi in ranges(ids, 7):
            seen.extend(p for p, _ in source.rows(conn, lo, hi, upto))
        assert sorted(seen) == list(range(1, upto + 1))
        assert list(source.rows(conn, None, None, 3)) == [
            (p, s) for p, s in source.rows(conn, None, None, upto) if p <= 3
        ]
    finally:
        conn.close()


def test_weighted_ranges_taper_and_cover_every_dossier_once(ledger: DossierLedger) -> None:
    source = LogSource.of(ledger)
    assert source is not None
    conn = source.connect()
    try:
        upto = source.upto(conn)
        ids = source.first_ids(conn, upto)
        weights = [w for w in runner.RANGE_WEIGHTS for _ in range(2)]
        bounds = ranges(ids, 0, weights)
        assert len(bounds) == len(weights)
        sizes = [
            sum(1 for i in ids if (lo is None or i >= lo) and (hi is None or i < hi))
            for lo, hi in bounds
        ]
        assert sum(sizes) == len(ids)
        assert sizes[0] > 3 * sizes[-1] > 0  # the last ranges are the small ones
        seen = [p for lo, hi in bounds for p, _ in source.rows(conn, lo, hi, upto)]
        assert sorted(seen) == list(range(1, upto + 1))
    finally:
        conn.close()
    assert ranges(ids[:3], 0, [1.0] * 8) == ranges(ids[:3], 3)  # never an empty range
    assert ranges([], 0, [1.0, 0.5]) == [(None, None)]


def test_no_log_source_for_postgres_or_memory() -> None:
    class Pool:
        db_name = ":memory:"
        is_sqlite_memory_mode = True

    class Recorder:
        datastore = type("Datastore", (), {"pool": Pool()})()

    assert LogSource.of(type("Ledger", (), {"recorder": Recorder()})()) is None
