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
* :func:`rebuild`: replaces every read model with a replay of the whole log in
  one transaction: the log read once in ledger order, regrouped by dossier on
  disk (:mod:`ledger.dossier_order`), folded and derived by forked workers;
* the Kafka runner lives in :mod:`projections.kafka_runner`.
"""

from __future__ import annotations

import marshal
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from ledger.dossier_order import RUN_BYTES, Row, grouped
from ledger.gc_pause import paused_gc
from projections import control_sheet, workload
from projections import state as dossier_state
from projections.store import DOSSIER_COLUMNS, ReadModelStore, utc_key
from projections.workload import Held

STORE_TRACKING = "store"


class LogReader(Protocol):
    """What the runners need of the ledger: its notification log."""

    def read(
        self, after: int = 0, limit: int = 1000, *, upto: int | None = None
    ) -> list[Recorded]: ...


_VIEW_ROW = itemgetter(*DOSSIER_COLUMNS)


def dossier_row(facts: dossier_state.Facts, v: dict[str, Any]) -> tuple[Any, ...]:
    """The ``rm_dossiers`` row of a fact sheet and its view (``v`` is filled in, then read)."""
    v["awaiting_supplement"] = int(v["awaiting_supplement"])
    v["apology_issued"] = int(v["apology_issued"])
    v["last_occurred_utc"] = utc_key(v["last_occurred_at"])
    v["fold"] = orjson.dumps(facts, option=orjson.OPT_SORT_KEYS).decode()
    return _VIEW_ROW(v)


_BUDGET_TEXTS: dict[tuple[type, Any, Any], str] = {}


def _budget_text(budget: dict[str, Any]) -> str:
    """A budget as the sheet stores it (sorted-key JSON), built once per distinct
    ``{"value", "unit"}`` (the value's type is part of the key: 3 and 3.0 differ)."""
    if len(budget) == 2 and "value" in budget and "unit" in budget:
        value = budget["value"]
        key = (type(value), value, budget["unit"])
        try:
            text = _BUDGET_TEXTS.get(key)
        except TypeError:  # an unhashable value: not remembered
            return orjson.dumps(budget, option=orjson.OPT_SORT_KEYS).decode()
        if text is None:
            text = orjson.dumps(budget, option=orjson.OPT_SORT_KEYS).decode()
            if len(_BUDGET_TEXTS) < 10_000:
                _BUDGET_TEXTS[key] = text
        return text
    return orjson.dumps(budget, option=orjson.OPT_SORT_KEYS).decode()


def sheet_rows(
    facts: dossier_state.Facts, rules: RuleBook, dossier_due: str
) -> list[tuple[Any, ...]]:
    """The ``rm_control_sheet`` rows of a fact sheet, built in ``SHEET_COLUMNS`` order
    straight from :func:`control_sheet.entries` (no row dict to fill in and read)."""
    did = facts["dossier_id"]
    out = []
    for h, deadline, ended_at, spent, result, note in control_sheet.entries(
        facts, rules, dossier_due
    ):
        budget = h["budget"]
        ack = h["acknowledged"]
        out.append(
            (
                did,
                h["seq"],
                h["position"],
                h["at"],
                h["from_official"],
                h["from_agency"],
                h["to_official"],
                h["to_agency"],
                h["step"],
                None if budget is None else _budget_text(budget),
                None if ack is None else int(ack),
                deadline,
                ended_at,
                spent,
                result,
                note,
            )
        )
    return out


@dataclass(frozen=True)
class Verdicts:
    """What the read models judge at the watermark rather than at a dossier's own last
    event: the workload of open dossiers held, and whether an open dossier is overdue.

    Called with ``now`` = the watermark (the latest business time in the read models
    less the streams' allowed lateness), so a dossier turns OVERDUE in the read
    models as soon as the watermark passes its deadline, even with no event of its own.
    """

    rules: RuleBook

    def __call__(self, held: list[Held], now: datetime) -> list[tuple[Any, ...]]:
        now = now.astimezone(ZoneInfo(self.rules.latest.timezone))  # shown in local time
        return [
            (r["official"], r["agency"], r["open_held"], r["overdue_held"], r["as_of"])
            for r in workload.rows(held, self.rules, now)
        ]

    def on_time(self, facts: dossier_state.Facts, now: datetime) -> str:
        """The open dossier's class at ``now`` (never before its own last event)."""
        last = datetime.fromisoformat(facts["last_occurred_at"])
        return dossier_state.view(facts, self.rules, max(now, last))["on_time"]


def workload_rows(rules: RuleBook) -> Verdicts:
    return Verdicts(rules)


VERDICTS_PACING = 10.0
"""The verdicts at the watermark wait at least this many times their own last cost."""
VERDICTS_EVERY_S = 1.0
"""... and at least this long, between two recomputations."""


@dataclass
class Projector:
    """Folds batches of stored events into the read models, deduplicating by position.

    The verdicts at the watermark (the workload table, open dossiers turned
    OVERDUE) read every open dossier: recomputed with every page, they cost as much
    as the page itself once tens of thousands are open. A page recomputes them only
    when they are due (:data:`VERDICTS_PACING`, :data:`VERDICTS_EVERY_S`), and a
    runner calls :meth:`settle` whenever it has caught up and before it stops, so
    they are never behind a quiet log. With ``paced=False``, every page does.
    """

    store: ReadModelStore
    rules: RuleBook
    paced: bool = True
    verdicts_every_s: float = VERDICTS_EVERY_S

    def __post_init__(self) -> None:
        self._workload = workload_rows(self.rules)
        self._stale = True  # a previous run may have stopped before settling
        self._next_verdicts = 0.0

    def _verdicts_due(self) -> bool:
        return not self.paced or time.monotonic() >= self._next_verdicts

    def _verdicts_done(self, started: float, cost: float) -> None:
        self._stale = False
        self._next_verdicts = started + max(self.verdicts_every_s, VERDICTS_PACING * cost)

    def settle(self) -> bool:
        """Bring the verdicts up to the watermark if any page skipped them; whether it did."""
        if not self._stale:
            return False
        started = time.monotonic()
        self.store.refresh(self._workload)
        self._verdicts_done(started, time.monotonic() - started)
        return True

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
        due = self._verdicts_due()
        started = time.monotonic()
        self.store.write(dossiers, sheets, tracking, self._workload if due else None)
        if due:  # the page's own rows are in this cost too: an overestimate, on the safe side
            self._verdicts_done(started, time.monotonic() - started)
        else:
            self._stale = True
        return applied


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
            projector.settle()
            if once:
                break
            time.sleep(poll_interval)
            continue
        applied += projector.apply(batch, {STORE_TRACKING: batch[-1].position})
        position = batch[-1].position
        batches += 1
    projector.settle()
    return applied


@dataclass
class RebuildReport:
    """What a rebuild did and where its time went.

    ``read_seconds``, ``derive_seconds`` and ``write_seconds`` are process-seconds:
    decoding and folding, and deriving rows, are summed over the worker processes
    (they overlap in wall time); writing is the parent's time in the database. The
    parent's reading and regrouping of the log counts only in ``total_seconds``.
    """

    events: int
    dossiers: int
    position: int
    read_seconds: float
    total_seconds: float
    derive_seconds: float = 0.0
    write_seconds: float = 0.0
    workers: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "dossiers": self.dossiers,
            "position": self.position,
            "seconds": round(self.total_seconds, 3),
            "events_per_s": round(self.events / self.total_seconds) if self.total_seconds else 0,
        }


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def rebuild(
    ledger: Any, projector: Projector, *, page: int = 5000, workers: int | None = None
) -> RebuildReport:
    """Drop every read model and replay the log up to its current end, in one transaction.

    The log is read once in ledger order and regrouped by dossier through a sort
    on disk (:mod:`ledger.dossier_order`): reading it through the (dossier,
    version) key instead seeks for every event, and once the log outgrows the
    page cache every seek waits on the disk. Chunks of about ``CHUNK_EVENTS``
    events of whole dossiers are folded and derived by ``workers`` forked processes
    (default: the CPUs this process may use) while this process inserts the rows
    they send back. The read models are the same for any ``workers``, on any store.
    """
    if workers is None:
        workers = usable_cpus()
    workers = max(1, workers)
    start = time.perf_counter()
    # Millions of small acyclic dicts and lists: the cyclic collector would rescan
    # them over and over (measured: it tripled the fold's cost). Nothing here is cyclic.
    with paused_gc():
        upto = ledger.max_position()
        groups = grouped(ledger.stored(0, page, upto=upto), run_bytes=SORT_RUN_BYTES)
        chunks = _chunks(groups, CHUNK_EVENTS)
        if workers == 1 or upto < MIN_EVENTS_TO_FORK or not _can_fork():
            decode = ledger.decode
            return _load(projector, (_fold_chunk(projector, decode, c) for c in chunks), 1, start)
        return _rebuild_forked(ledger, projector, chunks, workers, start)


def _can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


CHUNK_EVENTS = 2000
"""Events (of whole dossiers) sent to a worker at once: a chunk's fact sheets and rows
are what a worker (and the parent, inserting them) holds, so memory stays flat
however long the log."""

MIN_EVENTS_TO_FORK = 2 * CHUNK_EVENTS
"""Below this many events, forking costs more than it saves: the rebuild runs in this process."""

SORT_RUN_BYTES = RUN_BYTES
"""Stored bytes per sorted run of the regrouping (its memory bound; tests make it small)."""


def _chunks(groups: Iterable[list[Row]], events: int) -> Iterator[list[list[Row]]]:
    """Consecutive whole dossiers, about ``events`` events at a time."""
    chunk: list[list[Row]] = []
    size = 0
    for rows in groups:
        chunk.append(rows)
        size += len(rows)
        if size >= events:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@dataclass
class _ChunkResult:
    events: int
    position: int
    dossiers: list[tuple[Any, ...]]
    sheets: list[tuple[Any, ...]]
    read_seconds: float
    derive_seconds: float
    rows: bytes | None = None  # (dossiers, sheets) marshalled, when sent by a worker


def _fold_chunk(
    projector: Projector, decode: Callable[[bytes], dict[str, Any]], chunk: list[list[Row]]
) -> _ChunkResult:
    """Fold and derive whole dossiers (each one's rows in chain order)."""
    t0 = time.perf_counter()
    evolve_into = dossier_state.evolve_into
    folds: dict[str, dossier_state.Facts] = {}
    events = last = 0
    for rows in chunk:
        facts: dossier_state.Facts = {}
        for _, _, position, state in rows:
            evolve_into(facts, position, decode(state))
        folds[rows[0][0]] = facts
        events += len(rows)
        last = max(last, rows[-1][2])
    t1 = time.perf_counter()
    dossiers, sheets = projector.derive(folds)
    return _ChunkResult(events, last, dossiers, sheets, t1 - t0, time.perf_counter() - t1)


def _worker_init() -> None:
    """Default signal handling in a worker: a handler inherited from the parent (e.g. the
    ``project`` command's graceful-stop flag) would make the worker outlive
    ``Pool.terminate``."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_FOLD: tuple[Projector, Callable[[bytes], dict[str, Any]]] | None = None
"""What forked workers inherit: the projector and the decoder."""


def _chunk_task(packed: bytes) -> _ChunkResult:
    assert _FOLD is not None
    part = _fold_chunk(*_FOLD, marshal.loads(packed))
    # Rows are tuples of str, int and None: marshal packs them for the pipe in about
    # half of pickle's time (measured: 25 MB of rows, 0.19 s pickled vs 0.11 s).
    part.rows = marshal.dumps((part.dossiers, part.sheets), 2)
    part.dossiers, part.sheets = [], []
    return part


def _rebuild_forked(
    ledger: Any,
    projector: Projector,
    chunks: Iterator[list[list[Row]]],
    workers: int,
    start: float,
) -> RebuildReport:
    global _FOLD
    # Fork before reading: workers inherit neither the sort's memory nor an open
    # transaction; they get each chunk packed, never a database connection.
    _warm(ledger, projector)
    _FOLD = (projector, ledger.decode)
    pool = mp.get_context("fork").Pool(workers, _worker_init)
    try:
        packed = (marshal.dumps(c, 2) for c in chunks)
        report = _load(projector, _in_order(pool, packed, 2 * workers), workers, start)
        pool.close()  # every task is done: let the workers exit on their own
        pool.join()
        return report
    finally:
        pool.terminate()
        _FOLD = None


def _in_order(pool: Any, packed: Iterable[bytes], window: int) -> Iterator[_ChunkResult]:
    """``pool.imap(_chunk_task, packed)`` with at most ``window`` chunks submitted and not
    yet consumed: ``imap`` would read the whole log ahead, and let finished chunks pile
    up in this process while it inserts."""
    pending: deque[Any] = deque()
    for chunk in packed:
        if len(pending) >= window:
            yield pending.popleft().get()
        pending.append(pool.apply_async(_chunk_task, (chunk,)))
    while pending:
        yield pending.popleft().get()


def _warm(ledger: Any, projector: Projector) -> None:
    """Derive one dossier before forking, so that every worker inherits what the first
    derive builds lazily (the holiday data, the working-day tables: ~80 ms measured)
    instead of building it again."""
    first = ledger.read(0, 1)
    if first:
        did = first[0].envelope["dossier_id"]
        projector.derive({did: dossier_state.fold(ledger.events_of(did))})


def _load(
    projector: Projector, results: Iterable[_ChunkResult], workers: int, start: float
) -> RebuildReport:
    """Insert each chunk's rows as it arrives, then tracking and workload; one commit."""
    events = dossiers = position = 0
    read_s = derive_s = 0.0
    t = time.perf_counter()
    with projector.store.replace_all() as load:
        write_s = time.perf_counter() - t  # dropping and recreating the tables
        for part in results:
            t = time.perf_counter()
            if part.rows is not None:
                part.dossiers, part.sheets = marshal.loads(part.rows)
            load.add(part.dossiers, part.sheets)
            write_s += time.perf_counter() - t
            events += part.events
            dossiers += len(part.dossiers)
            position = max(position, part.position)
            read_s += part.read_seconds
            derive_s += part.derive_seconds
        t = time.perf_counter()
        load.finish({STORE_TRACKING: position}, projector._workload)
    write_s += time.perf_counter() - t  # tracking, workload and the commit
    return RebuildReport(
        events,
        dossiers,
        position,
        read_s,
        time.perf_counter() - start,
        derive_s,
        write_s,
        workers,
    )
