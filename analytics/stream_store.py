"""The embedded stream runner's store: its outputs, operator state and checkpoint in
``analytics.duckdb``, one DuckDB transaction per page.

``dossier process`` (:mod:`streams.embedded`) hands each page here: the ``signals``,
``alerts`` and ``metrics_daily`` rows, the processors' states (``stream_dossiers``,
``stream_keys``), the checkpoint (position, watermark, last final day), the analysts'
``events``/``dossiers``/``handovers`` rows (:mod:`analytics.loader`) and the page's
deliveries (:mod:`analytics.outbox`) are written together. A SIGKILL loses the page in
flight and nothing else; the next run reads it again, and outputs are keyed by
deterministic ids, so nothing doubles.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from analytics.connection import connect_writer, replace_rows
from analytics.loader import Loader
from analytics.outbox import Outbox
from analytics.schema import STREAM_STATE_SQL, output_ddl
from analytics.snapshot import publish
from ledger.domain.rules import RuleBook
from streams.outputs import TABLES
from streams.pipeline import Pipeline
from streams.subscriptions import Subscriber

CHECKPOINT = "embedded"
JSON_COLUMNS = {"event_ids", "recipients", "params"}


class StreamStore:
    """The DuckDB side of the embedded runner: outputs, states and checkpoint."""

    def __init__(
        self,
        path: Path,
        rules: RuleBook,
        *,
        memory: str | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """``memory``, ``checkpoint``: the writer's limits (``connect_writer``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con = connect_writer(str(path), memory=memory, checkpoint=checkpoint)
        for table in TABLES:
            self.con.execute(output_ddl(table))
        for statement in STREAM_STATE_SQL:
            self.con.execute(statement)
        self.loader = Loader(self.con, rules)
        self.outbox: Outbox | None = None

    def subscribe(
        self,
        subscribers: list[Subscriber],
        producer: Callable[[str, bytes, bytes], None] | None = None,
    ) -> None:
        """Queue every new output for these subscribers (:mod:`analytics.outbox`)."""
        self.outbox = Outbox(self.con, subscribers, producer=producer)

    def close(self) -> None:
        self.con.close()

    def publish(self, *, force: bool = False) -> None:
        """Let readers see what was committed (:mod:`analytics.snapshot`)."""
        publish(self.path, force=force)

    def checkpoint(self) -> tuple[int, dict[str, Any] | None, str | None, int]:
        row = self.con.execute(
            "SELECT position, watermark, final_day, events FROM stream_checkpoint WHERE name = ?",
            [CHECKPOINT],
        ).fetchone()
        if row is None:
            return 0, None, None, 0
        return int(row[0]), orjson.loads(row[1]) if row[1] else None, row[2], int(row[3] or 0)

    def restore(self, pipeline: Pipeline) -> None:
        for did, state in self.con.execute(
            "SELECT dossier_id, state FROM stream_dossiers"
        ).fetchall():
            pipeline.restore_dossier(did, state.encode())
        for key, state in self.con.execute("SELECT key, state FROM stream_keys").fetchall():
            pipeline.restore_key(key, orjson.loads(state))

    def write(
        self, taken: dict[str, Any], position: int, pipeline: Pipeline, records: list[Any]
    ) -> None:
        """Everything of one page in one transaction."""
        con = self.con
        con.execute("BEGIN")
        try:
            for table, key in (
                ("signals", "signals"),
                ("alerts", "alerts"),
                ("metrics_daily", "metrics_daily"),
            ):
                rows = taken[key]
                if rows:
                    self._insert(table, rows, replace=table == "metrics_daily")
            _upsert_states(
                con, "stream_dossiers", "dossier_id", taken["dossiers"], taken["dropped"]
            )
            _upsert_states(con, "stream_keys", "key", taken["keys"], taken["dropped_keys"])
            if records:
                self.loader.apply(records)
            if self.outbox is not None:
                self.outbox.enqueue(taken)
            con.execute(
                "INSERT OR REPLACE INTO stream_checkpoint VALUES (?, ?, ?, ?, ?)",
                [
                    CHECKPOINT,
                    position,
                    orjson.dumps(pipeline.wm.to_json()).decode(),
                    pipeline.final,
                    pipeline.events,
                ],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def counts(self) -> dict[str, dict[str, int]]:
        """Alerts by level and by kind, and signals by kind, as stored."""
        con = self.con
        levels = con.execute(
            "SELECT level, count(*) FROM alerts WHERE kind = 'deadline' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        kinds = con.execute("SELECT kind, count(*) FROM signals GROUP BY 1 ORDER BY 1").fetchall()
        other = con.execute(
            "SELECT kind, count(*) FROM alerts WHERE kind <> 'deadline' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        return {
            "alerts_by_level": dict(levels),
            "alerts_by_kind": dict(other),
            "signals_by_kind": dict(kinds),
        }

    def _insert(self, table: str, rows: list[dict[str, Any]], *, replace: bool) -> None:
        columns = list(TABLES[table][0])
        data = {
            c: [orjson.dumps(r[c]).decode() if c in JSON_COLUMNS else r[c] for r in rows]
            for c in columns
        }
        batch = pa.table(data)
        casts = ", ".join(
            f'CAST("{c}" AS {TABLES[table][0][c].split()[0]}) AS "{c}"' for c in columns
        )
        select = f"SELECT {casts} FROM stream_batch"
        self.con.register("stream_batch", batch)
        try:
            if replace:
                replace_rows(self.con, table, select, list(TABLES[table][1]))
            else:
                self.con.execute(f"INSERT OR IGNORE INTO {table} {select}")
        finally:
            self.con.unregister("stream_batch")


def _upsert_states(
    con: Any, table: str, key: str, states: dict[str, Any], dropped: set[str]
) -> None:
    # Delete, then insert: DuckDB's INSERT OR REPLACE of a page of states (some of a
    # few hundred KB) took over 200 MB of working memory; the tables hold the open
    # dossiers and the keys only, so the delete's scan stays short.
    gone = list(dropped | set(states))
    if gone:
        con.register("gone", pa.table({"k": gone}))
        con.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT k FROM gone)")
        con.unregister("gone")
    if states:
        batch = pa.table(
            {
                "k": list(states),
                "s": [
                    (s if isinstance(s, bytes) else orjson.dumps(s)).decode()
                    for s in states.values()
                ],
            }
        )
        con.register("states", batch)
        con.execute(f"INSERT INTO {table} SELECT k, s FROM states")
        con.unregister("states")
