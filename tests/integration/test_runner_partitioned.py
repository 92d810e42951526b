"""The rebuild: the log regrouped by dossier on disk, folded and derived by forked workers.

The read models must be byte-identical whatever the number of workers, the size
of the chunks sent to them and of the sorted runs, bounded by the log's end when
the rebuild started, and a worker must never outlive the rebuild.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import projections.runner as runner
from ledger.application import DossierLedger
from ledger.bootstrap import open_ledger
from ledger.log_reader import LogSource
from ledger.settings import Settings
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
    monkeypatch.setattr(runner, "MIN_EVENTS_TO_FORK", 0)


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


def test_small_chunks_and_sorted_runs_on_disk_give_the_same_read_models(
    ledger: DossierLedger, tmp_path: Path, always_fork: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chunk folded in this process from one run in memory, against chunks of ~7
    events from runs of ~2 KB on disk, in one and in two workers."""
    sums = []
    for name, chunk, run_bytes, workers in (
        ("whole", 10**9, 1 << 40, 1),
        ("small1", 7, 2000, 1),
        ("small2", 7, 2000, 2),
    ):
        monkeypatch.setattr(runner, "CHUNK_EVENTS", chunk)
        monkeypatch.setattr(runner, "SORT_RUN_BYTES", run_bytes)
        sums.append(checksum(ledger, tmp_path / f"{name}.sqlite3", workers=workers))
    assert sums[0] == sums[1] == sums[2]


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


def test_the_log_is_read_once_in_ledger_order_up_to_the_bound(ledger: DossierLedger) -> None:
    upto = ledger.max_position()
    assert [p for _, _, p, _ in ledger.stored(0, 7)] == list(range(1, upto + 1))
    assert [p for _, _, p, _ in ledger.stored(0, 2, upto=5)] == [1, 2, 3, 4, 5]
    assert [p for _, _, p, _ in ledger.stored(upto - 1, 7, upto=upto + 9)] == [upto]


def test_no_log_source_for_postgres_or_memory() -> None:
    class Pool:
        db_name = ":memory:"
        is_sqlite_memory_mode = True

    class Recorder:
        datastore = type("Datastore", (), {"pool": Pool()})()

    assert LogSource.of(type("Ledger", (), {"recorder": Recorder()})()) is None
