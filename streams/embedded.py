"""The embedded runner: the stream processors in-process over the ledger's log.

``dossier process`` reads the notification log in pages from its checkpoint,
feeds the :class:`~streams.pipeline.Pipeline`, and writes, per page and in ONE
DuckDB transaction of ``analytics.duckdb``: the ``signals``, ``alerts`` and
``metrics_daily`` rows, the processors' states (``stream_dossiers``,
``stream_keys``), the checkpoint (position, watermark, last final day), and the
analysts' ``events``/``dossiers``/``handovers`` rows when the analytics loader is
installed. A SIGKILL loses the page in flight and nothing else; the next run
reads it again, and outputs are keyed by deterministic ids, so nothing doubles.

Time: the watermark is the latest business time less the allowed lateness; at the
end of the log ``--now`` pushes it further (judge the open dossiers at an instant);
with ``--follow`` the wall clock pushes it too, so an idle office still sees
deadlines pass. ``replayed`` alerts are those fired more than the replay horizon
before the reference instant (``--now``, else the wall clock): they are recorded,
and not delivered unless asked.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ledger.domain.watermark import Watermark
from ledger.settings import Settings
from streams.config import StreamConfig
from streams.outputs import TABLES, ddl
from streams.pipeline import Pipeline

CHECKPOINT = "embedded"
PUBLISH_EVERY = 30.0
"""Seconds between readers' snapshots while catching up (copying the file each page
would cost a tenth of the run); once caught up, after every poll that wrote."""
PROVISIONAL_EVERY = 2.0
"""Seconds between provisional rows while catching up (and always once caught up)."""
STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS stream_dossiers (dossier_id VARCHAR PRIMARY KEY, state VARCHAR)",
    "CREATE TABLE IF NOT EXISTS stream_keys (key VARCHAR PRIMARY KEY, state VARCHAR)",
    "CREATE TABLE IF NOT EXISTS stream_checkpoint (name VARCHAR PRIMARY KEY, position BIGINT, "
    "watermark VARCHAR, final_day VARCHAR, events BIGINT)",
)
JSON_COLUMNS = {"event_ids", "recipients", "params"}


def analytics_path(settings: Settings) -> Path:
    return settings.data_dir / "analytics.duckdb"


class OutputStore:
    """The DuckDB side of the embedded runner: outputs, states and checkpoint."""

    def __init__(
        self,
        path: Path,
        rules: Any = None,
        *,
        memory: str | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """``memory``, ``checkpoint``: the writer's limits (``connect_writer``)."""
        from analytics.connection import connect_writer

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con = connect_writer(str(path), memory=memory, checkpoint=checkpoint)
        for table in TABLES:
            self.con.execute(ddl(table))
        for statement in STATE_DDL:
            self.con.execute(statement)
        self.loader = _analytics_loader(self.con, rules)
        self.outbox: Any = None

    def subscribe(self, subscribers: list[Any], producer: Any = None) -> None:
        """Queue every new output for these subscribers (``streams.delivery``)."""
        from streams.delivery import Outbox

        self.outbox = Outbox(self.con, subscribers, producer=producer)

    def close(self) -> None:
        self.con.close()

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
        import pyarrow as pa

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
                con, pa, "stream_dossiers", "dossier_id", taken["dossiers"], taken["dropped"]
            )
            _upsert_states(con, pa, "stream_keys", "key", taken["keys"], taken["dropped_keys"])
            if self.loader is not None and records:
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

    def _insert(self, table: str, rows: list[dict[str, Any]], *, replace: bool) -> None:
        import pyarrow as pa

        from analytics.connection import replace_rows

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
    con: Any, pa: Any, table: str, key: str, states: dict[str, Any], dropped: set[str]
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


def _analytics_loader(con: Any, rules: Any) -> Any:
    """The analysts' tables loader (``analytics.loader``), when it is installed."""
    try:
        from analytics.loader import Loader

        return Loader(con, rules)
    except ImportError:
        return None


def _default_subscriptions(settings: Settings) -> Path | None:
    path = settings.data_dir / "subscriptions.toml"
    return path if path.is_file() else None


def _producer(settings: Settings, subscribers: list[Any]) -> Any:
    """A send function for subscribers' Kafka topics, when a bootstrap is configured."""
    own = sorted({s.delivery.kafka_topic for s in subscribers if s.delivery.kafka_topic})
    if not settings.kafka_bootstrap or not own:
        return None
    from kafka import KafkaProducer

    from ledger.kafka import require_topics

    require_topics(settings.kafka_bootstrap, own)  # never created implicitly

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")

    def send(topic: str, key: bytes, value: bytes) -> None:
        producer.send(topic, key=key, value=value).get(timeout=10)

    return send


def _publish(path: Path) -> None:
    """Let readers see the new snapshot (``analytics.snapshot``), when it is installed."""
    try:
        from analytics.snapshot import publish
    except ImportError:
        return
    publish(path)


def process(
    settings: Settings,
    *,
    now: datetime | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
    config: StreamConfig | None = None,
    page: int = 5000,
    poll: float = 1.0,
    db_path: Path | None = None,
    subscriptions: Path | None = None,
    deliver: bool = True,
) -> dict[str, Any]:
    """Catch up with the ledger (and, with ``follow``, keep going); return a summary.

    ``subscriptions`` (default: DATA_DIR/subscriptions.toml when present) names who
    is told what; with ``deliver`` the alerts are sent as they fire and, at the end
    of a run, until every delivery has succeeded or run out of retries."""
    from ledger.bootstrap import open_ledger, open_rules
    from ledger.domain.catalog import load_catalog

    config = config or StreamConfig()
    stop = stop or threading.Event()
    rules = open_rules(settings)
    ledger = open_ledger(settings, rules=rules)
    store = OutputStore(
        db_path or analytics_path(settings),
        rules,
        memory=settings.duckdb_memory,
        checkpoint=settings.duckdb_checkpoint,
    )
    try:
        position, wm_json, final, events = store.checkpoint()
        pipeline = Pipeline(
            rules,
            config,
            catalog=load_catalog(),
            watermark=Watermark.from_json(wm_json, config.lateness),
            final=final,
        )
        pipeline.events = events
        store.restore(pipeline)
        subscriptions = subscriptions or _default_subscriptions(settings)
        if subscriptions is not None:
            from streams.subscriptions import load

            subscribers = load(subscriptions)
            store.subscribe(subscribers, _producer(settings, subscribers))
        delivered = Counter[str]()
        last_provisional = last_publish = time.monotonic()
        unpublished = True  # a first snapshot even when there is nothing new
        total = ledger.max_position()
        new_events = 0
        written = Counter[str]()
        while not stop.is_set():
            records = ledger.read(position, page)
            reference = now or datetime.now(UTC)
            for rec in records:
                pipeline.feed(rec, reference)
            idle = not records
            if idle:
                if now is not None:
                    pipeline.push(now, reference)
                if follow:
                    pipeline.push(datetime.now(UTC), reference)
            if records or idle:
                position = records[-1].position if records else position
                fresh = idle or time.monotonic() - last_provisional >= PROVISIONAL_EVERY
                if fresh:
                    last_provisional = time.monotonic()
                taken = pipeline.take(provisional=fresh)
                if records or any(
                    taken[k] for k in ("signals", "alerts", "metrics_daily", "dossiers", "keys")
                ):
                    store.write(taken, position, pipeline, records)
                    unpublished = True
                    for k in ("signals", "alerts", "metrics_daily"):
                        written[k] += len(taken[k])
            new_events += len(records)
            if unpublished and (idle or time.monotonic() - last_publish >= PUBLISH_EVERY):
                _publish(store.path)  # readers' snapshot: caught up, or every half minute
                last_publish, unpublished = time.monotonic(), False
            if store.outbox is not None and deliver:
                delivered.update(store.outbox.deliver())
            if progress is not None and records:
                progress(position, max(total, position))
            if idle:
                if not follow:
                    break
                stop.wait(poll)
        while store.outbox is not None and deliver and store.outbox.pending() and not stop.is_set():
            delivered.update(store.outbox.deliver())  # the end of a run: retries run out
            stop.wait(0.2)
        summary = _summary(store, pipeline, new_events, position)
        summary["written"] = dict(written)
        if store.outbox is not None:
            summary["deliveries"] = dict(delivered)
        return summary
    finally:
        store.close()


def _summary(
    store: OutputStore, pipeline: Pipeline, new_events: int, position: int
) -> dict[str, Any]:
    con = store.con
    levels = dict(
        con.execute(
            "SELECT level, count(*) FROM alerts WHERE kind = 'deadline' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    kinds = dict(con.execute("SELECT kind, count(*) FROM signals GROUP BY 1 ORDER BY 1").fetchall())
    other = dict(
        con.execute(
            "SELECT kind, count(*) FROM alerts WHERE kind <> 'deadline' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    wm = pipeline.wm.current
    return {
        "events": new_events,
        "position": position,
        "watermark": None if wm is None else wm.isoformat(),
        "final_through": pipeline.final,
        "open_states": len(pipeline.dossiers),
        "ignored_after_retention": pipeline.ignored,
        "alerts_by_level": levels,
        "alerts_by_kind": other,
        "signals_by_kind": kinds,
    }
