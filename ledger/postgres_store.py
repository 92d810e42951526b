"""PostgreSQL adapters: the event recorder with the ledger's tables, and the key store.

Same tables and transaction discipline as :mod:`ledger.sqlite_store`. Positions
(notification ids) come from a sequence: they increase with commit order (the
library locks the table on insert) but may skip values after a rolled-back
insert, so ``verify`` relies on the event index, not on gap-freedom, here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from ledger.domain.privacy import new_key

INDEX_TABLE = "ledger_event_index"
CURSORS_TABLE = "ledger_cursors"


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """PostgreSQL events table + event index + cursors, one transaction."""

    positions_gap_free = False
    placeholder = "%s"

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} (event_id text PRIMARY KEY, "
                "dossier_id text NOT NULL, version bigint NOT NULL, type text NOT NULL)"
            ).format(schema, Identifier(INDEX_TABLE))
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} (name text PRIMARY KEY, position bigint NOT NULL)"
            ).format(schema, Identifier(CURSORS_TABLE))
        )

    def _create_table(self, curs: Any) -> None:
        # Processes starting together (relay, workers, sink, several ingests) would
        # otherwise race on CREATE OR REPLACE FUNCTION: "tuple concurrently updated".
        curs.execute("SELECT pg_advisory_xact_lock(hashtext('dossier-ledger-ddl'))")
        super()._create_table(curs)

    @property
    def qualified_events_table(self) -> str:
        return f'"{self.datastore.schema}"."{self.events_table_name}"'

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """The events, then their index rows, before the library's pipeline sync: a
        conflict on either (a version or an event id already stored) then comes back as
        an ``IntegrityError`` the ledger retries carefully, not as "pipeline aborted"."""
        super()._insert_stored_events(curs, stored_events, **kwargs)
        rows = kwargs.get("index_rows")
        if rows:  # its own cursor: the library reads the new positions from ``curs``
            with curs.connection.cursor() as index:
                index.executemany(
                    SQL("INSERT INTO {}.{} VALUES (%s,%s,%s,%s)").format(
                        Identifier(self.datastore.schema), Identifier(INDEX_TABLE)
                    ),
                    rows,
                )

    def query(
        self, statement: str, params: Sequence[Any] = (), *, commit: bool = False
    ) -> list[tuple]:
        with self.datastore.transaction(commit=commit) as c:
            if self.datastore.schema:  # the ledger's own SQL names its tables unqualified
                c.execute(
                    SQL("SET LOCAL search_path TO {}").format(Identifier(self.datastore.schema))
                )
            c.execute(statement.replace("?", "%s"), list(params))
            if c.description is None:
                return []
            return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in c.fetchall()]


class PostgresKeyStore:
    """Applicant keys in their own tables (point ``DOSSIER_KEYSTORE`` at another database to separate them further)."""

    def __init__(self, conninfo: str, schema: str | None = None) -> None:
        self._lock = threading.Lock()
        options = {"options": f"-c search_path={schema}"} if schema else {}
        self._conn = psycopg.connect(conninfo, autocommit=True, **options)
        # Several processes may start at once: serialise the DDL.
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('dossier-ledger keystore'))")
            if schema:
                self._conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger_applicant_keys "
                "(pseudonym text PRIMARY KEY, key bytea NOT NULL)"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger_secrets (name text PRIMARY KEY, value bytea NOT NULL)"
            )
        self._secret: bytes | None = None

    def secret(self) -> bytes:
        if self._secret is None:
            with self._lock:
                self._conn.execute(
                    "INSERT INTO ledger_secrets VALUES ('pseudonym', %s) ON CONFLICT DO NOTHING",
                    (new_key(),),
                )
                row = self._conn.execute(
                    "SELECT value FROM ledger_secrets WHERE name='pseudonym'"
                ).fetchone()
                self._secret = bytes(row[0])
        return self._secret

    def keys_for(self, pseudonyms: list[str], *, create: bool) -> dict[str, bytes]:
        wanted = sorted(set(pseudonyms))
        if not wanted:
            return {}
        with self._lock:
            if create:
                with self._conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO ledger_applicant_keys VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        [(p, new_key()) for p in wanted],
                    )
            rows = self._conn.execute(
                "SELECT pseudonym, key FROM ledger_applicant_keys WHERE pseudonym = ANY(%s)",
                (wanted,),
            ).fetchall()
        return {p: bytes(k) for p, k in rows}

    def forget(self, pseudonym: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM ledger_applicant_keys WHERE pseudonym = %s", (pseudonym,)
            )
        return cur.rowcount > 0

    def close(self) -> None:
        self._conn.close()
