"""The checkpointed store runner and the rebuild, on SQLite and on PostgreSQL read models.

One scenario per backend (``read_models`` is parametrised); the ledger itself is
a SQLite file. Checksums are SHA-256 over an ordered dump of every read model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ledger.application import DossierLedger
from ledger.bootstrap import open_ledger
from ledger.domain.watermark import DEFAULT_LATENESS
from ledger.settings import Settings
from projections.runner import STORE_TRACKING, Projector, rebuild, run_store
from projections.store import PostgresReadModels, ReadModelStore, SQLiteReadModels
from tests.projection_factories import province

pytestmark = pytest.mark.integration

OpenStore = Callable[[], ReadModelStore]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DossierLedger]:
    """A ledger holding a small random province (about 1,200 events), shared read-only."""
    led = open_ledger(Settings.from_env(tmp_path_factory.mktemp("runner") / "data"))
    result = led.append_batch(province(200, seed=11))
    assert not result.rejected, result.rejected[:3]
    try:
        yield led
    finally:
        led.close()
        led.keys.close()


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """A factory of connections to one fresh read-model database."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")

        def make() -> ReadModelStore:
            return PostgresReadModels(url)
    else:
        path = tmp_path / "readmodels.sqlite3"

        def make() -> ReadModelStore:
            return SQLiteReadModels(path)

    opened: list[ReadModelStore] = []

    def tracked() -> ReadModelStore:
        opened.append(make())
        return opened[-1]

    yield tracked
    for s in opened:
        s.close()


def rebuilt_checksum(ledger: DossierLedger, store: ReadModelStore) -> str:
    rebuild(ledger, Projector(store, ledger.rules))
    return store.checksum()


def test_rebuild_twice_gives_identical_read_models(
    ledger: DossierLedger, open_store: OpenStore
) -> None:
    store = open_store()
    first = rebuilt_checksum(ledger, store)
    second = rebuilt_checksum(ledger, store)
    assert first == second
    assert len(store.select("rm_dossiers")) == 200
    assert store.position(STORE_TRACKING) == ledger.max_position()
    assert store.select("rm_control_sheet") and store.select("rm_workload")


def test_incremental_run_equals_rebuild(ledger: DossierLedger, open_store: OpenStore) -> None:
    store = open_store()
    expected = rebuilt_checksum(ledger, store)
    store.reset()
    applied = run_store(ledger, Projector(store, ledger.rules), batch_size=37)
    assert applied == ledger.max_position()
    assert store.checksum() == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stopped_and_restarted_at_random_batches_ends_the_same(
    ledger: DossierLedger, open_store: OpenStore, seed: int
) -> None:
    store = open_store()
    expected = rebuilt_checksum(ledger, store)
    store.reset()
    rng = random.Random(seed)
    runs = 0
    while store.position(STORE_TRACKING) < ledger.max_position():
        fresh = open_store()  # a new process would start with nothing in memory
        run_store(
            ledger,
            Projector(fresh, ledger.rules),
            batch_size=rng.randint(5, 90),
            max_batches=rng.randint(1, 6),
        )
        runs += 1
    assert runs > 3
    assert store.checksum() == expected


def test_replayed_batches_are_not_applied_twice(
    ledger: DossierLedger, open_store: OpenStore
) -> None:
    store = open_store()
    projector = Projector(store, ledger.rules)
    first = ledger.read(0, 300)
    assert projector.apply(first, {STORE_TRACKING: first[-1].position}) == 300
    before = store.checksum()
    assert projector.apply(first[100:], {STORE_TRACKING: first[-1].position}) == 0
    assert store.checksum() == before
    run_store(ledger, projector)
    assert store.checksum() == rebuilt_checksum(ledger, open_store())


def test_runner_follows_new_events(tmp_path: Path, open_store: OpenStore) -> None:
    led = open_ledger(Settings.from_env(tmp_path / "live"))
    try:
        events = province(60, seed=5)
        store = open_store()
        projector = Projector(store, led.rules)
        led.append_batch(events[:150])
        run_store(led, projector, batch_size=40)
        led.append_batch(events[150:])
        run_store(led, projector, batch_size=40)
        assert store.position(STORE_TRACKING) == led.max_position() == len(events)
        assert store.checksum() == rebuilt_checksum(led, open_store())
    finally:
        led.close()
        led.keys.close()


def test_read_model_row_matches_the_fold(ledger: DossierLedger, open_store: OpenStore) -> None:
    from projections import state

    store = open_store()
    rebuild(ledger, Projector(store, ledger.rules))
    rows = {r["dossier_id"]: r for r in store.select("rm_dossiers")}
    # open dossiers are judged at the watermark: the latest business time less the lateness
    watermark = max(datetime.fromisoformat(r["last_occurred_at"]) for r in rows.values())
    watermark -= DEFAULT_LATENESS
    overdue = 0
    for did in sorted(rows)[:20]:
        facts = state.fold(ledger.events_of(did))
        v = state.view(facts, ledger.rules)
        row = rows[did]
        for key in ("status", "holder", "original_due_at", "current_due_at"):
            assert row[key] == v[key], (did, key)
        judged_at = max(watermark, datetime.fromisoformat(v["last_occurred_at"]))
        assert row["on_time"] == state.view(facts, ledger.rules, judged_at)["on_time"], did
        overdue += row["on_time"] == "OVERDUE" and v["on_time"] == "WITHIN_DEADLINE"
        assert row["working_used_s"] == v["working_used_s"]
        assert row["last_position"] == v["last_position"]
    assert overdue, "some open dossier's deadline passed after its last event"


def test_verdicts_wait_for_their_turn_and_settle_when_caught_up(
    ledger: DossierLedger, open_store: OpenStore
) -> None:
    """Pages between two recomputations leave the workload and the overdue flips as
    they were; settling brings them to what a page-by-page run computes."""
    every_page = open_store()
    run_store(ledger, Projector(every_page, ledger.rules, paced=False), batch_size=100)
    expected = every_page.checksum()
    every_page.reset()

    store = open_store()
    projector = Projector(store, ledger.rules, verdicts_every_s=3600)
    pages = [ledger.read(p, 100) for p in range(0, ledger.max_position(), 100)]
    projector.apply(pages[0], {STORE_TRACKING: pages[0][-1].position})  # due: the first
    first = store.select("rm_workload")
    for page in pages[1:]:  # within the hour that follows: not due
        projector.apply(page, {STORE_TRACKING: page[-1].position})
    assert store.select("rm_workload") == first
    assert store.checksum() != expected
    assert projector.settle() and not projector.settle()  # once, then nothing is stale
    assert store.checksum() == expected
