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
  one transaction; on a SQLite ledger, forked workers each read, fold and derive
  their own ranges of dossiers (see :mod:`ledger.log_reader`);
* the Kafka runner lives in :mod:`projections.kafka_runner`.
"""

from __future__ import annotations

import marshal
import math
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from ledger.events import Recorded
from ledger.gc_pause import paused_gc
from ledger.log_reader import LogSource, ranges
from ledger.rules import RuleBook
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
        with mp.get_context("fork").Pool(workers, _worker_init) as pool:
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
    reading and folding, and deriving rows, are summed over the worker processes
    (they overlap in wall time); writing is the parent's time in the database.
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

    On a SQLite ledger the dossiers are cut into ranges of ``dossier_id`` and
    ``workers`` forked processes (default: the CPUs this process may use) each
    read, fold and derive whole ranges on their own read-only connection, while
    this process inserts the rows they send back. Otherwise (PostgreSQL, or no
    ``fork``) this process reads and folds the log and workers derive rows.
    The read models are the same for any ``workers``.
    """
    if workers is None:
        workers = usable_cpus()
    workers = max(1, workers)
    start = time.perf_counter()
    # Millions of small acyclic dicts and lists: the cyclic collector would rescan
    # them over and over (measured: it tripled the fold's cost). Nothing here is cyclic.
    with paused_gc():
        source = LogSource.of(ledger)
        if source is not None and (workers == 1 or _can_fork()):
            return _rebuild_ranges(ledger, projector, source, workers, start)
        return _rebuild_in_order(ledger, projector, page, workers, start)


def _can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


RANGE_WEIGHTS = (1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2)
"""Relative sizes of each worker's successive ranges. Several ranges per worker: the
parent inserts one range's rows while workers derive the next. Shrinking ones at
the end: the workers finish close together (no core idles while the other folds
a whole range) and the last range, inserted after every worker is done, is small
(measured: ~0.02-0.04 s less than 12 equal ranges on 2 workers)."""


@dataclass
class _RangeResult:
    events: int
    position: int
    dossiers: list[tuple[Any, ...]]
    sheets: list[tuple[Any, ...]]
    read_seconds: float
    derive_seconds: float
    rows: bytes | None = None  # (dossiers, sheets) marshalled, when sent by a worker


MAX_RANGE_DOSSIERS = 2000
"""Most dossiers a range of weight 1 holds: a range's fact sheets and rows are what a
worker (and the parent, inserting them) holds at once, so memory stays flat however
long the log; more ranges are added in front of ``RANGE_WEIGHTS`` when needed."""

MIN_DOSSIERS_TO_FORK = 2000
"""Below this, forking costs more than it saves: the rebuild runs in this process."""


def _worker_init() -> None:
    """Default signal handling in a worker: a handler inherited from the parent (e.g. the
    ``project`` command's graceful-stop flag) would make the worker outlive
    ``Pool.terminate``."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_RANGES: tuple[Projector, LogSource, int, Callable[[bytes], dict[str, Any]]] | None = None
"""What forked range workers inherit: the projector, the log source, ``upto``, the decoder."""
_CONN: tuple[int, sqlite3.Connection] | None = None
"""The worker's own read connection, opened on first use (keyed by pid: never inherited)."""


def _connect(source: LogSource) -> sqlite3.Connection:
    """A read connection without the memory map: mapped pages of the ledger file count
    in the process's resident memory, which would then grow with the log (measured:
    334 MB peak for 250,000 events; the map saved ~0.1 s per 90,000 events)."""
    conn = source.connect()
    conn.execute("PRAGMA mmap_size = 0")
    return conn


def _range_task(bounds: tuple[str | None, str | None]) -> _RangeResult:
    global _CONN
    assert _RANGES is not None
    projector, source, upto, decode = _RANGES
    if _CONN is None or _CONN[0] != os.getpid():
        _CONN = (os.getpid(), _connect(source))
    part = _fold_range(projector, source, _CONN[1], decode, bounds, upto)
    # Rows are tuples of str, int and None: marshal packs them for the pipe in about
    # half of pickle's time (measured: 25 MB of rows, 0.19 s pickled vs 0.11 s).
    part.rows = marshal.dumps((part.dossiers, part.sheets), 2)
    part.dossiers, part.sheets = [], []
    return part


def _fold_range(
    projector: Projector,
    source: LogSource,
    conn: sqlite3.Connection,
    decode: Callable[[bytes], dict[str, Any]],
    bounds: tuple[str | None, str | None],
    upto: int,
) -> _RangeResult:
    """Read, fold and derive the dossiers of one range (events in ledger order)."""
    t0 = time.perf_counter()
    evolve_into = dossier_state.evolve_into
    folds: dict[str, dossier_state.Facts] = {}
    events = last = 0
    did: str | None = None
    facts: dossier_state.Facts = {}
    # Rows come dossier by dossier: look a fact sheet up only when the dossier changes.
    for position, state in source.rows(conn, bounds[0], bounds[1], upto):
        env = decode(state)
        if env["dossier_id"] != did:
            did = env["dossier_id"]
            facts = folds.get(did)
            if facts is None:
                facts = folds[did] = {}
        evolve_into(facts, position, env)
        events += 1
        if position > last:
            last = position
    t1 = time.perf_counter()
    dossiers, sheets = projector.derive(folds)
    return _RangeResult(events, last, dossiers, sheets, t1 - t0, time.perf_counter() - t1)


def _rebuild_ranges(
    ledger: Any, projector: Projector, source: LogSource, workers: int, start: float
) -> RebuildReport:
    global _RANGES
    conn = _connect(source)
    try:
        upto = source.upto(conn)
        first = source.first_ids(conn, upto)
        bounds = ranges(first, 0, range_weights(len(first), workers))
        if workers == 1 or len(first) < MIN_DOSSIERS_TO_FORK:
            results: Iterable[_RangeResult] = (
                _fold_range(projector, source, conn, ledger.decode, b, upto) for b in bounds
            )
            return _load(projector, results, 1, start)
        # Fork before the write transaction opens: workers inherit no open transaction,
        # and open their own read connections (see _range_task).
        _warm(ledger, projector, first)
        _RANGES = (projector, source, upto, ledger.decode)
        pool = mp.get_context("fork").Pool(min(workers, len(bounds)), _worker_init)
        try:
            results = _in_order(pool, bounds, window=2 * workers)
            report = _load(projector, results, workers, start)
            pool.close()  # every task is done: let the workers exit on their own
            pool.join()
            return report
        finally:
            pool.terminate()
            _RANGES = None
    finally:
        conn.close()


def range_weights(dossiers: int, workers: int) -> list[float]:
    """``RANGE_WEIGHTS`` for each worker, after as many full ranges as it takes for no
    range to exceed ``MAX_RANGE_DOSSIERS``."""
    tail = [w for w in RANGE_WEIGHTS for _ in range(workers)]
    extra = math.ceil(max(0.0, dossiers / MAX_RANGE_DOSSIERS - sum(tail)) / workers) * workers
    return [1.0] * extra + tail


def _in_order(
    pool: Any, bounds: list[tuple[str | None, str | None]], window: int
) -> Iterator[_RangeResult]:
    """``pool.imap(_range_task, bounds)`` with at most ``window`` ranges submitted and not
    yet consumed: ``imap`` would let finished ranges pile up in this process while it
    inserts (the whole log's rows, were the workers faster than the inserts)."""
    pending: deque[Any] = deque()
    for b in bounds:
        if len(pending) >= window:
            yield pending.popleft().get()
        pending.append(pool.apply_async(_range_task, (b,)))
    while pending:
        yield pending.popleft().get()


def _warm(ledger: Any, projector: Projector, dossier_ids: list[str]) -> None:
    """Derive one dossier before forking, so that every worker inherits what the first
    derive builds lazily (the holiday data, the working-day tables: ~80 ms measured)
    instead of building it again."""
    if dossier_ids:
        projector.derive({dossier_ids[0]: dossier_state.fold(ledger.events_of(dossier_ids[0]))})


def _load(
    projector: Projector, results: Iterable[_RangeResult], workers: int, start: float
) -> RebuildReport:
    """Insert each range's rows as it arrives, then tracking and workload; one commit."""
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


def _rebuild_in_order(
    ledger: Any, projector: Projector, page: int, workers: int, start: float
) -> RebuildReport:
    """The rebuild over ``ledger.iter_all``: for stores a worker cannot open by itself."""
    t0 = time.perf_counter()
    upto = ledger.max_position()
    evolve_into = dossier_state.evolve_into
    folds: dict[str, dossier_state.Facts] = {}
    events = position = 0
    for rec in ledger.iter_all(0, upto=upto, page=page):
        env = rec.envelope
        did = env["dossier_id"]
        facts = folds.get(did)
        if facts is None:
            facts = folds[did] = {}
        evolve_into(facts, rec.position, env)
        position = rec.position
        events += 1
    t1 = time.perf_counter()
    dossiers, sheets = derive_parallel(projector, folds, workers)
    part = _RangeResult(events, position, dossiers, sheets, t1 - t0, time.perf_counter() - t1)
    return _load(projector, [part], workers, start)
