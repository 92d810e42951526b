"""The alert feed: the ``alerts`` table read in insertion order from the published snapshot.

Alerts are only ever inserted, so DuckDB's ``rowid`` orders them as they fired
(were written); the feed remembers the last one it showed. It reads the
snapshot that the runner publishes after each commit (``analytics.snapshot``), so
it never holds the runner's file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from analytics.snapshot import connect_reader

COLUMNS = (
    "alert_id",
    "kind",
    "level",
    "dossier_id",
    "official_id",
    "agency",
    "due_at",
    "fired_at",
    "recipients",
    "replayed",
)


class AlertFeed:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.last_rowid = -1

    def _query(self, where: str, order: str, limit: int | None) -> list[dict[str, Any]]:

        try:
            con, _ = connect_reader(self.db_path)
        except FileNotFoundError:
            return []
        try:
            cols = ", ".join(
                f'CAST("{c}" AS VARCHAR)' if c in ("due_at", "fired_at") else f'"{c}"'
                for c in COLUMNS
            )
            sql = f"SELECT rowid, {cols} FROM alerts {where} ORDER BY rowid {order}"
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            try:
                rows = con.execute(sql, [self.last_rowid] if "?" in where else []).fetchall()
            except Exception:  # noqa: BLE001 - no alerts table yet
                return []
        finally:
            con.close()
        out = []
        for r in rows:
            row = dict(zip(COLUMNS, r[1:], strict=True))
            row["recipients"] = orjson.loads(row["recipients"]) if row["recipients"] else []
            out.append((r[0], row))
        out.sort(key=lambda x: x[0])
        if out:
            self.last_rowid = max(self.last_rowid, out[-1][0])
        return [row for _, row in out]

    def latest(self, n: int) -> list[str]:
        """The last ``n`` alerts, oldest first, as JSON lines."""
        rows = self._query("", "DESC", n) if n else []
        if not n:  # start at the end: only what fires from now on
            self._query("", "DESC", 1)
        return [orjson.dumps(r).decode() for r in rows]

    def new(self) -> list[str]:
        """Alerts written since the last call, as JSON lines."""
        return [orjson.dumps(r).decode() for r in self._query("WHERE rowid > ?", "ASC", None)]
