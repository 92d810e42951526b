"""Streaming reads of the whole log for verification, on one consistent snapshot.

``dossier verify --all`` and ``dossier digest`` walk every stored event; holding
the log in memory would cost about 4 KB per event. A :class:`Snapshot` instead
opens server-side (PostgreSQL) or plain (SQLite) cursors inside one read
transaction and yields rows as they come, a few thousand at a time:

* :meth:`Snapshot.ledger_rows`: every stored event in ledger order, decoded
  without trusting it (the one sequential read ``verify --all`` needs when
  nothing is wrong), and :meth:`Snapshot.index_triples` the event index in its
  own order;
* :meth:`Snapshot.stored_rows`: every stored event, by dossier then version
  (the events table's primary key order), to name what is wrong;
* :meth:`Snapshot.index_rows`: the event index written with every append, in
  the same order, so the two can be merge-joined;
* :meth:`Snapshot.positions`: every position, ascending (gap check);
* :meth:`Snapshot.hashes`: ``(position, hash)`` in ledger order (digests).

One snapshot (SQLite ``BEGIN`` on a read-only connection; PostgreSQL
``REPEATABLE READ``) makes the streams agree with each other even while
writers append. The database sorts the index, spilling to disk if it must.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import orjson

from ledger.application import decode_stored_row
from ledger.domain.hashchain import StoredRow
from ledger.log_reader import LogSource

if TYPE_CHECKING:
    from ledger.application import DossierLedger

FETCH = 5000
"""Rows fetched per round trip: the unit of memory held by a stream."""


class Snapshot:
    """Cursors over one read transaction of the ledger's store."""

    def __init__(
        self, ledger: DossierLedger, new_cursor: Any, placeholder: str, collate: str = ""
    ) -> None:
        self._ledger = ledger
        self._collate = collate  # byte order of ids, as Python compares them
        self._new_cursor = new_cursor
        self._ph = placeholder
        self._table = ledger.recorder.events_table_name
        self._pos = ledger._pos_col

    def _rows(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        cur = self._new_cursor()
        try:
            cur.execute(sql.replace("?", self._ph), params)
            while True:
                batch = cur.fetchmany(FETCH)
                if not batch:
                    return
                yield from batch
        finally:
            with suppress(Exception):  # the snapshot may already be released
                cur.close()

    def stored_rows(self, dossier_id: str | None = None) -> Iterator[StoredRow]:
        """Every stored row, decoded defensively, ordered by dossier then version."""
        where, params = ("WHERE originator_id = ? ", [dossier_id]) if dossier_id else ("", [])
        return self._stored(
            f"{where}ORDER BY originator_id{self._collate}, originator_version", params
        )

    def ledger_rows(self) -> Iterator[StoredRow]:
        """Every stored row, decoded defensively, in ledger order: the store's own
        order, read straight through (no sort, no lookups by dossier)."""
        return self._stored(f"ORDER BY {self._pos}", [])

    def _stored(self, clause: str, params: list[Any]) -> Iterator[StoredRow]:

        sql = (
            f"SELECT originator_id, originator_version, {self._pos}, topic, state "
            f"FROM {self._table} {clause}"
        )
        for did, version, position, topic, state in self._rows(sql, params):
            yield decode_stored_row(did, int(version), int(position), topic, bytes(state))

    def index_rows(self, dossier_id: str | None = None) -> Iterator[tuple[str, str, int, str]]:
        """(event_id, dossier_id, version, type), ordered by dossier, version, event id."""
        where, params = ("WHERE dossier_id = ? ", [dossier_id]) if dossier_id else ("", [])
        sql = (
            f"SELECT event_id, dossier_id, version, type FROM ledger_event_index {where}"
            f"ORDER BY dossier_id{self._collate}, version, event_id{self._collate}"
        )
        for e, d, v, t in self._rows(sql, params):
            yield e, d, int(v), t

    def index_triples(self) -> Iterator[tuple[str, str, int]]:
        """(event_id, dossier_id, version) of every index row, in the index's own order."""
        sql = "SELECT event_id, dossier_id, version FROM ledger_event_index"
        for e, d, v in self._rows(sql, []):
            yield e, d, int(v)

    def positions(self) -> Iterator[int]:
        """Every stored position, ascending."""
        sql = f"SELECT {self._pos} FROM {self._table} ORDER BY {self._pos}"
        for (p,) in self._rows(sql, []):
            yield int(p)

    def hashes(self, upto: int | None = None, after: int = 0) -> Iterator[tuple[int, str]]:
        """(position, stored hash) of every event in (after, upto], in ledger order."""
        stop, params = ("", [after]) if upto is None else (f"AND {self._pos} <= ? ", [after, upto])
        sql = (
            f"SELECT {self._pos}, state FROM {self._table} WHERE {self._pos} > ? {stop}"
            f"ORDER BY {self._pos}"
        )
        loads = orjson.loads
        for p, state in self._rows(sql, params):
            yield int(p), loads(state)["envelope"]["hash"]

    def max_position(self) -> int:
        rows = list(self._rows(f"SELECT MAX({self._pos}) FROM {self._table}", []))
        return int(rows[0][0] or 0) if rows else 0


@contextmanager
def snapshot(ledger: DossierLedger) -> Iterator[Snapshot]:
    """A :class:`Snapshot` of the ledger's store, released on exit."""

    source = LogSource.of(ledger)
    if source is not None:  # a SQLite file: a read-only connection of our own
        conn = source.connect()
        # No memory map: a mapped file counts in the process's resident memory.
        conn.execute("PRAGMA mmap_size = 0")
        try:
            conn.execute("BEGIN")
            yield Snapshot(ledger, conn.cursor, "?")
        finally:
            conn.close()
        return
    datastore = ledger.recorder.datastore
    if hasattr(datastore, "schema"):  # PostgreSQL: server-side cursors, one snapshot
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        counter = iter(range(1 << 30))
        with datastore.get_connection() as conn, conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if datastore.schema:
                conn.execute(
                    SQL("SET LOCAL search_path TO {}").format(Identifier(datastore.schema))
                )

            def named() -> Any:
                cur = conn.cursor(name=f"dossier_scan_{next(counter)}", row_factory=tuple_row)
                cur.itersize = FETCH
                return cur

            (collation,) = (
                conn.cursor(row_factory=tuple_row)
                .execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
                .fetchone()
            )
            # Python compares ids by code point; so do these collations (and then the
            # primary key's order serves). Any other: sort by byte order explicitly.
            byte_order = str(collation).lower() in {"c", "posix", "c.utf-8", "c.utf8"}
            yield Snapshot(ledger, named, "%s", "" if byte_order else ' COLLATE "C"')
        return
    with datastore.transaction(commit=False) as c:  # e.g. in-memory SQLite
        raw_conn = c.sqlite_cursor.connection
        yield Snapshot(ledger, raw_conn.cursor, "?")
