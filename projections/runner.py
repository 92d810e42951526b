"""Checkpointed runners that keep the read models up to date, and the full rebuild.

The same :class:`Projector` serves every source. It loads the fact sheets of the
dossiers in a batch from the read-model store, folds the batch's events into
them, skipping any event at or below a dossier's last applied ledger
``position`` (a redelivered Kafka record, a replayed page), and writes the
dossiers' rows, their control-sheet rows, the workload and the source's
tracking position in one transaction. A crash loses at most the uncommitted
batch, which the next run reads again; nothing is applied twice.

* :func:`run_store`: the embedded runner over the store's notification log,
  resuming from the ``store`` tracking position;
* :func:`rebuild`: drops every read model and replays the whole log, keeping
  fact sheets in memory and writing once at the end;
* the Kafka runner lives in :mod:`projections.kafka_runner`.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from ledger.events import Recorded
from ledger.rules import RuleBook
from projections import control_sheet, workload
from projections import state as dossier_state
from projections.store import DOSSIER_COLUMNS, SHEET_COLUMNS, ReadModelStore, utc_key
from projections.workload import Held

STORE_TRACKING = "store"


class LogReader(Protocol):
    """What the runners need of the ledger: its notification log."""

    def read(
        self, after: int = 0, limit: int = 1000, *, upto: int | None = None
    ) -> list[Recorded]: ...


def dossier_row(facts: dossier_state.Facts, v: dict[str, Any]) -> tuple[Any, ...]:
    """The ``rm_dossiers`` row of a fact sheet and its view."""
    row = {
        **v,
        "awaiting_supplement": int(v["awaiting_supplement"]),
        "apology_issued": int(v["apology_issued"]),
        "last_occurred_utc": utc_key(v["last_occurred_at"]),
        "fold": orjson.dumps(facts, option=orjson.OPT_SORT_KEYS).decode(),
    }
    return tuple(row[c] for c in DOSSIER_COLUMNS)


def sheet_rows(
    facts: dossier_state.Facts, rules: RuleBook, dossier_due: str
) -> list[tuple[Any, ...]]:
    did = facts["dossier_id"]
    out = []
    for r in control_sheet.rows(facts, rules, dossier_due=dossier_due):
        budget = r["budget"]
        ack = r["acknowledged"]
        r = {
            **r,
            "dossier_id": did,
            "budget": None
            if budget is None
            else orjson.dumps(budget, option=orjson.OPT_SORT_KEYS).decode(),
            "acknowledged": None if ack is None else int(ack),
        }
        out.append(tuple(r[c] for c in SHEET_COLUMNS))
    return out


def workload_rows(rules: RuleBook) -> Callable[[list[Held], datetime], list[tuple[Any, ...]]]:
    tz = ZoneInfo(rules.latest.timezone)

    def compute(held: list[Held], now: datetime) -> list[tuple[Any, ...]]:
        now = now.astimezone(tz)  # shown in local time; stored instants are UTC
        return [
            (r["official"], r["agency"], r["open_held"], r["overdue_held"], r["as_of"])
            for r in workload.rows(held, rules, now)
        ]

    return compute


@dataclass
class Projector:
    """Folds batches of stored events into the read models, deduplicating by position."""

    store: ReadModelStore
    rules: RuleBook

    def __post_init__(self) -> None:
        self._workload = workload_rows(self.rules)

    def derive(
        self, folds: dict[str, dossier_state.Facts]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        dossiers, sheets = [], []
        for did in sorted(folds):
            facts = folds[did]
            v = dossier_state.view(facts, self.rules)
            dossiers.append(dossier_row(facts, v))
            sheets.extend(sheet_rows(facts, self.rules, v["original_due_at"]))
        return dossiers, sheets

    def apply(self, records: Iterable[Recorded], tracking: dict[str, int]) -> int:
        """Apply a batch and move ``tracking`` in one transaction; return events applied."""
        records = list(records)
        ids = sorted({r.envelope["dossier_id"] for r in records})
        folds = self.store.load_folds(ids)
        touched: dict[str, dossier_state.Facts] = {}
        applied = 0
        for rec in records:
            did = rec.envelope["dossier_id"]
            facts = folds.get(did, dossier_state.EMPTY)
            if facts and rec.position <= facts["last_position"]:
                continue  # already applied (redelivery or replay)
            facts = dossier_state.evolve(facts, rec)
            folds[did] = touched[did] = facts
            applied += 1
        dossiers, sheets = self.derive(touched)
        self.store.write(dossiers, sheets, tracking, self._workload)
        return applied

    def write_all(
        self, folds: dict[str, dossier_state.Facts], tracking: dict[str, int], workers: int = 1
    ) -> None:
        """Write every dossier at once (the rebuild); derive rows on ``workers`` processes."""
        dossiers, sheets = derive_parallel(self, folds, workers)
        self.store.write(dossiers, sheets, tracking, self._workload, replace_sheets=False)


_FORKED: tuple[Projector, list[tuple[str, dossier_state.Facts]]] | None = None
"""What forked derive workers inherit (copy-on-write): nothing is pickled on the way in."""


def _derive_slice(bounds: tuple[int, int]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    assert _FORKED is not None
    projector, items = _FORKED
    return projector.derive(dict(items[bounds[0] : bounds[1]]))


def derive_parallel(
    projector: Projector, folds: dict[str, dossier_state.Facts], workers: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows of every dossier, in dossier order, derived by forked processes when it pays.

    Deriving (deadlines, step results) costs far more per dossier than folding an
    event, and dossiers are independent; the output is the same for any ``workers``.
    """
    global _FORKED
    if workers <= 1 or len(folds) < 2000 or "fork" not in mp.get_all_start_methods():
        return projector.derive(folds)
    items = sorted(folds.items())
    step = -(-len(items) // (workers * 4))
    bounds = [(i, min(i + step, len(items))) for i in range(0, len(items), step)]
    _FORKED = (projector, items)
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_derive_slice, bounds)
    finally:
        _FORKED = None
    dossiers = [row for part in parts for row in part[0]]
    sheets = [row for part in parts for row in part[1]]
    return dossiers, sheets


def run_store(
    ledger: LogReader,
    projector: Projector,
    *,
    batch_size: int = 1000,
    once: bool = True,
    poll_interval: float = 1.0,
    max_batches: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Follow the notification log from the stored position; return events applied.

    With ``once``, stop when caught up; otherwise poll until ``should_stop()``.
    ``max_batches`` stops early (tests use it to interrupt a run at random points).
    """
    position = projector.store.position(STORE_TRACKING)
    applied = batches = 0
    while not should_stop():
        if max_batches is not None and batches >= max_batches:
            break
        batch = ledger.read(position, batch_size)
        if not batch:
            if once:
                break
            time.sleep(poll_interval)
            continue
        applied += projector.apply(batch, {STORE_TRACKING: batch[-1].position})
        position = batch[-1].position
        batches += 1
    return applied


@dataclass
class RebuildReport:
    events: int
    dossiers: int
    position: int
    read_seconds: float
    total_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "dossiers": self.dossiers,
            "position": self.position,
            "seconds": round(self.total_seconds, 3),
            "events_per_s": round(self.events / self.total_seconds) if self.total_seconds else 0,
        }


def rebuild(
    ledger: Any, projector: Projector, *, page: int = 5000, workers: int | None = None
) -> RebuildReport:
    """Drop every read model and replay the whole log (writes once at the end).

    ``workers``: processes deriving rows (default: the CPUs this process may use).
    """
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    start = time.perf_counter()
    # Millions of small acyclic dicts and lists: the cyclic collector would rescan
    # them over and over (measured: it tripled the fold's cost). Nothing here is cyclic.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _rebuild(ledger, projector, page, workers, start)
    finally:
        if was_enabled:
            gc.enable()


def _rebuild(
    ledger: Any, projector: Projector, page: int, workers: int, start: float
) -> RebuildReport:
    evolve = dossier_state.evolve
    empty = dossier_state.EMPTY
    folds: dict[str, dossier_state.Facts] = {}
    events = position = 0
    for rec in ledger.iter_all(0, page=page):
        did = rec.envelope["dossier_id"]
        folds[did] = evolve(folds.get(did, empty), rec)
        position = rec.position
        events += 1
    read_done = time.perf_counter()
    projector.store.reset()
    projector.write_all(folds, {STORE_TRACKING: position}, workers)
    return RebuildReport(
        events, len(folds), position, read_done - start, time.perf_counter() - start
    )
