"""SQLite adapters: the event recorder with the ledger's tables, and the key store.

The ledger's two extra tables are written in the same transaction as the
events (via the recorder's ``_insert_events`` extension point, the one the
library's process recorders use for tracking records):

* ``ledger_event_index`` (event_id primary key): ``event_id`` is a global
  idempotency key, and ``verify`` can name an event whose row was deleted;
* ``ledger_cursors``: named positions (e.g. the relay's last position acked by
  Kafka) kept in the same store as the log they point into.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.domain.privacy import new_key

INDEX_TABLE = "ledger_event_index"
CURSORS_TABLE = "ledger_cursors"


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite events table + event index + cursors, one file, one transaction."""

    positions_gap_free = True
    placeholder = "?"

    @property
    def qualified_events_table(self) -> str:
        return self.events_table_name

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {INDEX_TABLE} (event_id TEXT PRIMARY KEY, "
            "dossier_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL) WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {CURSORS_TABLE} (name TEXT PRIMARY KEY, "
            "position INTEGER NOT NULL)",
        ]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        rows = [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored_events]
        if len(rows) == 1:
            c.execute(self.insert_events_statement, rows[0])
            ids = [c.lastrowid]
        elif rows:
            # One executemany instead of the library's row-by-row inserts. Writing
            # first takes the write lock at once (waiting for other writers) rather
            # than upgrading a read, which SQLite refuses; under the lock new rows
            # get max(rowid)+1, +2, ... so the last n rowids are this batch's.
            c.executemany(self.insert_events_statement, rows)
            c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
            last = c.fetchone()[0]
            ids = list(range(last - len(rows) + 1, last + 1))
        else:
            ids = []
        index_rows = kwargs.get("index_rows")
        if index_rows:
            c.executemany(f"INSERT INTO {INDEX_TABLE} VALUES (?,?,?,?)", index_rows)
        return ids

    def query(
        self, statement: str, params: Sequence[Any] = (), *, commit: bool = False
    ) -> list[tuple]:
        with self.datastore.transaction(commit=commit) as c:
            raw = c.sqlite_cursor
            raw.row_factory = None  # plain tuples: several times faster than sqlite3.Row
            raw.execute(statement, list(params))
            return raw.fetchall() if raw.description else []


class SQLiteKeyStore:
    """Applicant keys in their own SQLite file, apart from the event store."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS applicant_keys (pseudonym TEXT PRIMARY KEY, key BLOB NOT NULL)"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
        )
        self._secret: bytes | None = None

    def secret(self) -> bytes:
        if self._secret is None:
            with self._lock:
                self._conn.execute(
                    "INSERT OR IGNORE INTO secrets VALUES ('pseudonym', ?)", (new_key(),)
                )
                (self._secret,) = self._conn.execute(
                    "SELECT value FROM secrets WHERE name='pseudonym'"
                ).fetchone()
        return self._secret

    def keys_for(self, pseudonyms: list[str], *, create: bool) -> dict[str, bytes]:
        wanted = sorted(set(pseudonyms))
        with self._lock:
            if create and wanted:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT OR IGNORE INTO applicant_keys VALUES (?, ?)",
                        [(p, new_key()) for p in wanted],
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            found: dict[str, bytes] = {}
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._conn.execute(
                        f"SELECT pseudonym, key FROM applicant_keys WHERE pseudonym IN ({marks})",
                        chunk,
                    ).fetchall()
                )
        return found

    def forget(self, pseudonym: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM applicant_keys WHERE pseudonym = ?", (pseudonym,))
        return cur.rowcount > 0

    def close(self) -> None:
        self._conn.close()
