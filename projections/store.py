"""Read-model tables and their tracking rows: one interface, SQLite and PostgreSQL.

Tables (the same DDL serves both databases):

* ``rm_dossiers``: one row per dossier: the current state's columns, the last
  applied ledger ``position`` (the per-dossier dedupe mark) and ``fold``, the
  fact sheet as JSON from which the next event continues;
* ``rm_control_sheet``: one row per hand-over (Form 05);
* ``rm_workload``: one row per official: open dossiers held, overdue held,
  as of the latest business time in the read models;
* ``rm_tracking``: named positions: ``store`` (the notification log) and
  ``kafka:<topic>:<partition>`` (the next offset to read).

:meth:`ReadModelStore.write` applies rows and positions in one transaction,
so a crash leaves either all of a batch or none of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from ledger.domain.watermark import DEFAULT_LATENESS, Watermark
from ledger.settings import Settings
from projections.workload import Held

DOSSIER_COLUMNS = (
    "dossier_id",
    "last_position",
    "status",
    "holder",
    "holder_agency",
    "holder_since",
    "step",
    "procedure_code",
    "procedure_version",
    "agency",
    "channel",
    "rule_set",
    "supplement_mode",
    "received_at",
    "appointment_at",
    "computed_due_at",
    "original_due_at",
    "current_due_at",
    "due_restart_at",
    "due_pause_at",
    "working_used_s",
    "working_left_s",
    "paused_s",
    "supplement_requests",
    "awaiting_supplement",
    "apology_issued",
    "result",
    "ended_at",
    "on_time",
    "last_occurred_at",
    "last_occurred_utc",
    "fold",
)
SHEET_COLUMNS = (
    "dossier_id",
    "seq",
    "position",
    "handed_at",
    "from_official",
    "from_agency",
    "to_official",
    "to_agency",
    "step",
    "budget",
    "acknowledged",
    "step_deadline",
    "step_ended_at",
    "step_working_s",
    "result",
    "note",
)
WORKLOAD_COLUMNS = ("official", "agency", "open_held", "overdue_held", "as_of")
_INT = {
    "last_position",
    "working_used_s",
    "working_left_s",
    "paused_s",
    "supplement_requests",
    "awaiting_supplement",
    "apology_issued",
    "seq",
    "position",
    "acknowledged",
    "step_working_s",
    "open_held",
    "overdue_held",
}
TABLES = ("rm_dossiers", "rm_control_sheet", "rm_workload", "rm_tracking")


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f"{c} {'BIGINT' if c in _INT else 'TEXT'}" for c in columns)


OPEN_HELD = "status NOT IN ('RETURNED', 'WITHDRAWN') AND holder IS NOT NULL"
"""Open dossiers someone holds: the workload's rows (and its partial index's condition)."""

DDL = (
    f"CREATE TABLE IF NOT EXISTS rm_dossiers ({_cols(DOSSIER_COLUMNS)}, PRIMARY KEY (dossier_id))",
    f"CREATE TABLE IF NOT EXISTS rm_control_sheet ({_cols(SHEET_COLUMNS)}, "
    "PRIMARY KEY (dossier_id, seq))",
    f"CREATE TABLE IF NOT EXISTS rm_workload ({_cols(WORKLOAD_COLUMNS)}, PRIMARY KEY (official))",
    "CREATE TABLE IF NOT EXISTS rm_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    # Each page of ``project`` asks for the latest business time, the open dossiers'
    # holders and those within their deadline: without these, three scans of the whole
    # table per page (time and memory growing with the log).
    "CREATE INDEX IF NOT EXISTS rm_dossiers_last ON rm_dossiers (last_occurred_utc)",
    # The holders' index holds the open dossiers only: with every dossier ever held in it,
    # the workload's scan per page grew with the log (measured: 4,237 events/s at
    # 1,000,000 events against 7,562 at 250,000). The WHERE repeats the query's own.
    "DROP INDEX IF EXISTS rm_dossiers_held",
    f"CREATE INDEX IF NOT EXISTS rm_dossiers_open ON rm_dossiers (holder) WHERE {OPEN_HELD}",
    "CREATE INDEX IF NOT EXISTS rm_dossiers_on_time ON rm_dossiers (on_time)",
)
ORDER = {
    "rm_dossiers": "dossier_id",
    "rm_control_sheet": "dossier_id, seq",
    "rm_workload": "official",
    "rm_tracking": "name",
}

WorkloadFn = Callable[[list[Held], datetime], list[tuple[Any, ...]]]


def utc_key(instant: str) -> str:
    """A fixed-width UTC form of an ISO instant that sorts as text (for SQL MAX).

    ``isoformat`` writes the same text as ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` in
    a third less time, for four-digit years (``%Y`` does not pad smaller ones).
    """
    d = datetime.fromisoformat(instant).astimezone(UTC)
    if d.year >= 1000:
        return d.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ReadModelStore(ABC):
    """Where read models live; subclasses supply the connection and transactions."""

    param = "?"
    lateness: timedelta = DEFAULT_LATENESS
    """The allowed lateness of the one watermark (``streams.toml``'s ``lateness``): the
    open dossiers are judged at the latest business time less this, as the streams do."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside a write transaction that commits on success."""

    @abstractmethod
    def close(self) -> None: ...

    def _sql(self, statement: str) -> str:
        return statement if self.param == "?" else statement.replace("?", self.param)

    def create(self) -> None:
        with self.transaction() as c:
            for statement in DDL:
                c.execute(statement)

    def reset(self) -> None:
        """Drop and recreate every read-model table (rebuild starts here)."""
        with self.transaction() as c:
            for table in TABLES:
                c.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in DDL:
                c.execute(statement)

    @contextmanager
    def replace_all(self) -> Iterator[BulkLoad]:
        """Drop, recreate and refill every read model in one transaction (the rebuild).

        Readers keep seeing the old read models until the new ones commit, and a
        crash leaves the old ones in place.
        """
        with self.transaction() as c:
            for table in TABLES:
                c.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in DDL:
                c.execute(statement)
            yield BulkLoad(self, c)

    def position(self, name: str) -> int:
        with self.transaction() as c:
            c.execute(self._sql("SELECT position FROM rm_tracking WHERE name = ?"), [name])
            row = c.fetchone()
        return int(row[0]) if row else 0

    def positions(self, prefix: str) -> dict[str, int]:
        with self.transaction() as c:
            c.execute(
                self._sql("SELECT name, position FROM rm_tracking WHERE name LIKE ?"),
                [prefix + "%"],
            )
            return {name: int(pos) for name, pos in c.fetchall()}

    def load_folds(self, dossier_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored fact sheets of these dossiers (those that have one)."""
        out: dict[str, dict[str, Any]] = {}
        with self.transaction() as c:
            for i in range(0, len(dossier_ids), 500):
                chunk = list(dossier_ids[i : i + 500])
                marks = ",".join([self.param] * len(chunk))
                c.execute(
                    f"SELECT dossier_id, fold FROM rm_dossiers WHERE dossier_id IN ({marks})", chunk
                )
                out.update((did, orjson.loads(fold)) for did, fold in c.fetchall())
        return out

    def write(
        self,
        dossiers: Sequence[tuple[Any, ...]],
        sheets: Iterable[tuple[Any, ...]],
        tracking: dict[str, int],
        workload: WorkloadFn | None,
        *,
        replace_sheets: bool = True,
    ) -> None:
        """Upsert dossier rows, replace their control-sheet rows, move the tracking
        positions and (unless ``workload`` is None) recompute the verdicts at the
        watermark, all in one transaction."""
        cols = ", ".join(DOSSIER_COLUMNS)
        marks = ", ".join("?" * len(DOSSIER_COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in DOSSIER_COLUMNS[1:])
        with self.transaction() as c:
            self._lock(c)
            if dossiers:
                c.executemany(
                    self._sql(
                        f"INSERT INTO rm_dossiers ({cols}) VALUES ({marks}) "
                        f"ON CONFLICT (dossier_id) DO UPDATE SET {updates}"
                    ),
                    dossiers,
                )
                if replace_sheets:
                    ids = [d[0] for d in dossiers]
                    for i in range(0, len(ids), 500):
                        chunk = ids[i : i + 500]
                        c.execute(
                            "DELETE FROM rm_control_sheet WHERE dossier_id IN "
                            f"({','.join([self.param] * len(chunk))})",
                            chunk,
                        )
            sheet_rows = list(sheets)
            if sheet_rows:
                c.executemany(
                    self._sql(
                        f"INSERT INTO rm_control_sheet ({', '.join(SHEET_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(SHEET_COLUMNS))})"
                    ),
                    sheet_rows,
                )
            c.executemany(
                self._sql(
                    "INSERT INTO rm_tracking (name, position) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
                ),
                sorted(tracking.items()),
            )
            if workload is not None:
                self._write_workload(c, workload)

    def refresh(self, workload: WorkloadFn) -> None:
        """Recompute the verdicts at the watermark (workload, overdue flips) on their own."""
        with self.transaction() as c:
            self._lock(c)
            self._write_workload(c, workload)

    def _lock(self, c: Any) -> None:
        """Serialise writers (several Kafka workers may share one database).

        SQLite needs nothing more: ``BEGIN IMMEDIATE`` already takes the write lock.
        """
        return None

    def _write_workload(self, c: Any, workload: WorkloadFn) -> None:
        c.execute("SELECT MAX(last_occurred_utc) FROM rm_dossiers")
        (latest,) = c.fetchone()
        c.execute("DELETE FROM rm_workload")
        if latest is None:
            return
        c.execute(
            "SELECT holder, holder_agency, status, original_due_at, rule_set, agency, "
            "awaiting_supplement, supplement_mode FROM rm_dossiers "
            f"WHERE {OPEN_HELD}"
        )  # no ORDER BY: workload counts per official; the index on holder, not a full scan
        held = [Held(*r[:6], bool(r[6]), r[7]) for r in c.fetchall()]
        self._insert_workload(c, workload, held, latest)

    def _insert_workload(self, c: Any, workload: WorkloadFn, held: list[Held], latest: str) -> None:
        """Judge the open dossiers at the watermark (``latest`` less the allowed lateness):
        flip those whose deadline it has passed to OVERDUE, then insert the workload of
        ``held`` as of it (``rm_workload`` is empty)."""
        now = Watermark(self.lateness, datetime.fromisoformat(latest)).current
        assert now is not None
        judge = getattr(workload, "on_time", None)
        if judge is not None:
            self._flip_overdue(c, judge, now)
        rows = workload(held, now)
        if rows:
            c.executemany(
                self._sql(
                    f"INSERT INTO rm_workload ({', '.join(WORKLOAD_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(WORKLOAD_COLUMNS))})"
                ),
                rows,
            )

    def _flip_overdue(
        self, c: Any, judge: Callable[[dict[str, Any], datetime], str], now: datetime
    ) -> None:
        """Open, within-deadline rows whose deadline of record the watermark has passed:
        judged again at the watermark (the one definition, :func:`projections.state.view`)."""
        # The deadlines are ISO texts with their own offsets; a day ahead of ``now`` in
        # UTC, a text bound keeps every row already due (an offset is at most 14 h), and
        # the folds of the dossiers far from their deadline are never read.
        bound = (now.astimezone(UTC) + timedelta(days=1)).isoformat()
        c.execute(
            self._sql(
                "SELECT dossier_id, original_due_at, fold FROM rm_dossiers "
                "WHERE on_time = 'WITHIN_DEADLINE' "
                "AND status NOT IN ('RETURNED', 'WITHDRAWN', 'RESOLVED') AND original_due_at < ?"
            ),
            [bound],
        )
        flips = [
            (did,)
            for did, due, fold in c.fetchall()
            if datetime.fromisoformat(due) < now and judge(orjson.loads(fold), now) == "OVERDUE"
        ]
        if flips:
            c.executemany(
                self._sql("UPDATE rm_dossiers SET on_time = 'OVERDUE' WHERE dossier_id = ?"), flips
            )

    def held(self) -> list[Held]:
        """Every open dossier's holder and deadline (for workload as of another instant)."""
        with self.transaction() as c:
            c.execute(
                "SELECT holder, holder_agency, status, original_due_at, rule_set, agency, "
                "awaiting_supplement, supplement_mode FROM rm_dossiers "
                f"WHERE {OPEN_HELD} "
                "ORDER BY dossier_id"
            )
            return [Held(*r[:6], bool(r[6]), r[7]) for r in c.fetchall()]

    def select(self, table: str, where: str = "", params: Sequence[Any] = ()) -> list[dict]:
        """Rows of a read-model table as dicts, in key order."""
        if table not in ORDER:
            raise ValueError(f"unknown read-model table {table!r}")
        with self.transaction() as c:
            c.execute(self._sql(f"SELECT * FROM {table} {where} ORDER BY {ORDER[table]}"), params)
            names = [d[0] for d in c.description]
            return [dict(zip(names, r, strict=True)) for r in c.fetchall()]

    def dump(self, tables: Sequence[str] = TABLES) -> Iterator[str]:
        """Every read-model row as a JSON line, tables and rows in a fixed order."""
        with self.transaction() as c:
            for table in tables:
                c.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")
                while rows := c.fetchmany(5000):  # in pages: a table can be the whole log
                    for row in rows:
                        yield table + " " + json.dumps(list(row), ensure_ascii=False)

    def checksum(self, tables: Sequence[str] = TABLES) -> str:
        """SHA-256 over :meth:`dump`: equal read models give equal checksums."""
        h = hashlib.sha256()
        for line in self.dump(tables):
            h.update(line.encode("utf-8") + b"\n")
        return h.hexdigest()


_HELD_ROW = itemgetter(
    *(
        DOSSIER_COLUMNS.index(c)
        for c in (
            "dossier_id",
            "holder",
            "holder_agency",
            "status",
            "original_due_at",
            "rule_set",
            "agency",
            "awaiting_supplement",
            "supplement_mode",
        )
    )
)
_LAST_UTC = DOSSIER_COLUMNS.index("last_occurred_utc")
_CLOSED = ("RETURNED", "WITHDRAWN")
"""Statuses whose dossiers nobody holds any more (as in the workload query)."""


class BulkLoad:
    """Rows added to freshly created read-model tables inside :meth:`ReadModelStore.replace_all`.

    The workload's inputs (the open dossiers' holders and the latest business time)
    are taken from the dossier rows as they are added: the same values the
    queries of :meth:`ReadModelStore._write_workload` would read back, without
    scanning the freshly written table again at the end of the load.
    """

    def __init__(self, store: ReadModelStore, cursor: Any) -> None:
        self._store, self._c = store, cursor
        self._dossiers = store._sql(
            f"INSERT INTO rm_dossiers ({', '.join(DOSSIER_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(DOSSIER_COLUMNS))})"
        )
        self._sheets = store._sql(
            f"INSERT INTO rm_control_sheet ({', '.join(SHEET_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(SHEET_COLUMNS))})"
        )
        self._held: list[tuple[str, Held]] = []
        self._latest: str | None = None

    def add(self, dossiers: Sequence[tuple[Any, ...]], sheets: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows of dossiers not loaded before (the tables start empty)."""
        if dossiers:
            self._c.executemany(self._dossiers, dossiers)
            self._note_held(dossiers)
        if sheets:
            self._c.executemany(self._sheets, sheets)

    def _note_held(self, dossiers: Sequence[tuple[Any, ...]]) -> None:
        latest = max((r[_LAST_UTC] for r in dossiers if r[_LAST_UTC] is not None), default=None)
        if latest is not None and (self._latest is None or latest > self._latest):
            self._latest = latest
        held = self._held
        for did, holder, agency_held, status, due, rs, agency, awaiting, mode in map(
            _HELD_ROW, dossiers
        ):
            if holder is not None and status not in _CLOSED:
                held.append(
                    (did, Held(holder, agency_held, status, due, rs, agency, bool(awaiting), mode))
                )

    def finish(self, tracking: dict[str, int], workload: WorkloadFn) -> None:
        """Set the tracking positions and compute the workload from the loaded rows."""
        self._c.executemany(
            self._store._sql("INSERT INTO rm_tracking (name, position) VALUES (?, ?)"),
            sorted(tracking.items()),
        )
        if self._latest is not None:
            self._held.sort(key=itemgetter(0))  # dossier order, as the query reads them
            held = [h for _, h in self._held]
            self._store._insert_workload(self._c, workload, held, self._latest)


class SQLiteReadModels(ReadModelStore):
    """Read models in their own SQLite file (``readmodels.sqlite3`` in the data dir)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # The Kafka client calls its rebalance listener from its own thread.
        self._lock_thread = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self.create()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock_thread:
            c = self._conn.cursor()
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                c.close()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def replace_all(self) -> Iterator[BulkLoad]:
        """As :meth:`ReadModelStore.replace_all`, without an fsync at the commit.

        ``synchronous=OFF`` for this one transaction only: the read models are
        derived data that ``rebuild`` recreates from the ledger at any time, so the
        rebuild does not wait for the disk (measured: the commit's checkpoint of
        ~40 MB went from ~0.09 s to ~0.05 s). A power cut during or just after it
        can at worst damage this file, and the remedy is the same rebuild.

        ``secure_delete=FAST`` for it too: this SQLite build zeroes every freed page
        by default, so dropping the old tables wrote ~40 MB of zeros to the WAL
        that the new rows overwrite at once (measured: the drop went from ~0.09 s
        to ~0.013 s). The read models hold no personal data (the applicant stays
        sealed in the ledger), and the freed pages are refilled by the new rows.
        """
        with self._lock_thread:
            (secure,) = self._conn.execute("PRAGMA secure_delete").fetchone()
            self._conn.execute("PRAGMA synchronous=OFF")
            self._conn.execute("PRAGMA secure_delete=FAST")
            try:
                with super().replace_all() as load:
                    yield load
            finally:
                self._conn.execute(f"PRAGMA secure_delete={int(secure)}")
                self._conn.execute("PRAGMA synchronous=NORMAL")


class PostgresReadModels(ReadModelStore):
    """Read models in the deployment's PostgreSQL database (``DOSSIER_STORE``).

    A ``?schema=NAME`` in the URL puts the tables in that schema.
    """

    param = "%s"

    def __init__(self, url: str) -> None:
        from urllib.parse import parse_qs, urlparse

        import psycopg

        u = urlparse(url)
        schema = parse_qs(u.query).get("schema", [None])[0]
        self._conn = psycopg.connect(u._replace(query="").geturl(), autocommit=True)
        if schema:
            from psycopg.sql import SQL, Identifier

            self._conn.execute(SQL("SET search_path TO {}").format(Identifier(schema)))
        self.create()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._conn.transaction(), self._conn.cursor() as c:
            yield c

    def _lock(self, c: Any) -> None:
        c.execute("LOCK TABLE rm_tracking IN EXCLUSIVE MODE")

    def create(self) -> None:
        # Workers started together race on CREATE TABLE IF NOT EXISTS (a duplicate key
        # in PostgreSQL's catalog): the first creates, the others wait, then find them.
        with self.transaction() as c:
            c.execute("SELECT pg_advisory_xact_lock(hashtext('dossier-readmodels-ddl'))")
            for statement in DDL:
                c.execute(statement)

    def close(self) -> None:
        self._conn.close()


def open_store(settings: Settings, lateness: timedelta = DEFAULT_LATENESS) -> ReadModelStore:
    """The configured read-model store: PostgreSQL for deployments, else SQLite.

    ``lateness``: the watermark's allowed lateness (the streams' configured one), so the
    read models judge "overdue" at the same instant as the stream processors."""
    store: ReadModelStore
    if settings.uses_postgres:
        store = PostgresReadModels(settings.store)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = SQLiteReadModels(Path(settings.data_dir) / "readmodels.sqlite3")
    store.lateness = lateness
    return store
