"""Read-only queries on the analysts' DuckDB file (``analytics.duckdb``) for the web pages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from analytics.snapshot import snapshot_path


class AnalyticsBusy(RuntimeError):
    """``analytics.duckdb`` stayed locked by its writer."""


def _jsonish(value: Any) -> Any:
    """DuckDB JSON columns come back as text; dates as date objects."""
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class Analytics:
    """Read-only queries on ``analytics.duckdb``.

    The writer's published snapshot (``analytics.snapshot``) is kept open between
    queries and reopened when a newer one is published (a new file: the rename
    leaves the old one readable until closed). Without a snapshot the file itself
    is opened read-only for each query only: holding it would stop a writer from
    starting.
    """

    JSON_COLUMNS = ("event_ids", "params", "recipients")

    def __init__(self, path: Path, *, wait: float = 3.0) -> None:
        self.path, self.wait = path, wait
        self.snapshot = snapshot_path(path)
        self._lock = threading.Lock()
        self._held: tuple[Any, Any, set[str]] | None = None  # (file identity, con, tables)

    def available(self) -> bool:
        return self.snapshot.exists() or self.path.exists()

    def _open(self, path: Path) -> Any:
        import duckdb

        deadline = time.monotonic() + self.wait
        while True:
            try:
                return duckdb.connect(str(path), read_only=True)
            except (duckdb.IOException, duckdb.ConnectionException) as e:
                # The writer holds the file's lock (another process), or a read-write
                # connection to it is open in this process.
                text = str(e).lower()
                busy = "lock" in text or "different configuration" in text
                if not busy or time.monotonic() > deadline:
                    raise AnalyticsBusy(f"{path}: {e}") from None
                time.sleep(0.05)

    @staticmethod
    def _tables(con: Any) -> set[str]:
        rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        return {r[0] for r in rows}

    @contextmanager
    def connect(self) -> Iterator[tuple[Any, set[str]]]:
        """A connection and the tables it has (hold it briefly: one query)."""
        snap = self.snapshot
        try:
            st = snap.stat()
        except FileNotFoundError:
            st = None
        if st is None:
            con = self._open(self.path)
            try:
                yield con, self._tables(con)
            finally:
                con.close()
            return
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._held is None or self._held[0] != identity:
                if self._held is not None:
                    self._held[1].close()
                    self._held = None
                con = self._open(snap)  # type: ignore[arg-type]
                self._held = (identity, con, self._tables(con))
            yield self._held[1], self._held[2]

    def rows(self, sql: str, params: Sequence[Any] = (), *, needs: str) -> list[dict[str, Any]]:
        """Rows as dicts; none when the file or the table ``needs`` is not there yet."""
        if not self.available():
            return []
        with self.connect() as (con, tables):
            if needs not in tables:
                return []
            cur = con.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            fetched = cur.fetchall()
        out = []
        for r in fetched:
            row = {n: _jsonish(v) for n, v in zip(names, r, strict=True)}
            for c in self.JSON_COLUMNS:
                if isinstance(row.get(c), str):
                    row[c] = orjson.loads(row[c])
            out.append(row)
        return out

    def close(self) -> None:
        with self._lock:
            if self._held is not None:
                self._held[1].close()
                self._held = None
