"""The analytics sink: ledger events into a DuckDB file, idempotent by ledger ``position``.

Two sources, one loader:

* ``kafka`` (the deployment): a consumer group on ``dossier.events``. Offsets are
  committed only after the DuckDB transaction that holds the batch has
  committed, so a crash replays a batch at worst, and the replay is absorbed by
  the primary key on ``position`` (the relay is at-least-once; this is where
  its duplicates die).
* ``store`` (the embedded default): read the ledger's notification log directly
  from the highest position already loaded.

Rows are loaded in batches through a pyarrow table (one ``INSERT OR IGNORE ...
SELECT`` per batch). A record that cannot be decoded goes to ``dossier.dlq``
with the reason in a header; it is never skipped silently.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ledger import topics
from ledger.events import Recorded

if TYPE_CHECKING:
    import duckdb

    from ledger.application import DossierLedger

TABLE = "events"
SCHEMA_SQL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    position    BIGINT PRIMARY KEY,
    event_id    VARCHAR NOT NULL,
    dossier_id  VARCHAR NOT NULL,
    type        VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ,
    appended_at TIMESTAMPTZ,
    actor_id    VARCHAR,
    actor_role  VARCHAR,
    agency      VARCHAR,
    data        JSON,
    hash        VARCHAR,
    prev_hash   VARCHAR
)
"""
COLUMNS = (
    "position",
    "event_id",
    "dossier_id",
    "type",
    "occurred_at",
    "recorded_at",
    "appended_at",
    "actor_id",
    "actor_role",
    "agency",
    "data",
    "hash",
    "prev_hash",
)
_INSERT = (
    f"INSERT OR IGNORE INTO {TABLE} SELECT position, event_id, dossier_id, type, "
    "CAST(occurred_at AS TIMESTAMPTZ), CAST(recorded_at AS TIMESTAMPTZ), "
    "CAST(appended_at AS TIMESTAMPTZ), actor_id, actor_role, agency, CAST(data AS JSON), "
    "hash, prev_hash FROM sink_batch"
)


@dataclass
class SinkReport:
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    max_position: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class DuckDBSink:
    """The ``events`` table of a DuckDB file; ``load`` is idempotent by position."""

    def __init__(self, path: str | Path) -> None:
        import duckdb

        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(self.path)
        self.con.execute(SCHEMA_SQL)

    def close(self) -> None:
        self.con.close()

    def max_position(self) -> int:
        return int(
            self.con.execute(f"SELECT coalesce(max(position), 0) FROM {TABLE}").fetchone()[0]
        )

    def count(self) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])

    def load(self, records: Iterable[Recorded]) -> int:
        """Insert the records not yet present, in one transaction; return how many were new."""
        import pyarrow as pa

        cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        seen: set[int] = set()
        for rec in records:
            if rec.position in seen:
                continue
            seen.add(rec.position)
            env = rec.envelope
            actor = env.get("actor") or {}
            cols["position"].append(rec.position)
            cols["event_id"].append(env["event_id"])
            cols["dossier_id"].append(env["dossier_id"])
            cols["type"].append(env["type"])
            cols["occurred_at"].append(env["occurred_at"])
            cols["recorded_at"].append(env.get("recorded_at"))
            cols["appended_at"].append(env.get("appended_at"))
            cols["actor_id"].append(actor.get("id"))
            cols["actor_role"].append(actor.get("role"))
            cols["agency"].append(actor.get("agency"))
            cols["data"].append(orjson.dumps(env.get("data")).decode())
            cols["hash"].append(env.get("hash"))
            cols["prev_hash"].append(env.get("prev_hash"))
        if not seen:
            return 0
        batch = pa.table(
            {
                c: pa.array(v, type=pa.int64() if c == "position" else pa.string())
                for c, v in cols.items()
            }
        )
        con = self.con
        con.execute("BEGIN")
        try:
            con.register("sink_batch", batch)
            (inserted,) = con.execute(_INSERT).fetchone()
            con.unregister("sink_batch")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(inserted)


def load_from_store(ledger: DossierLedger, sink: DuckDBSink, page: int = 10_000) -> SinkReport:
    """Load the ledger's events after the highest position already in DuckDB."""
    report = SinkReport()
    after = sink.max_position()
    while True:
        batch = ledger.read(after, page)
        if not batch:
            break
        report.read += len(batch)
        n = sink.load(batch)
        report.loaded += n
        report.duplicates += len(batch) - n
        after = batch[-1].position
    report.max_position = sink.max_position()
    return report


def load_from_kafka(
    bootstrap: str,
    sink: DuckDBSink,
    *,
    topic: str = topics.EVENTS,
    group: str = "dossier-sink",
    once: bool = False,
    idle_seconds: float = 3.0,
    session_timeout_ms: int = 6000,
    stop: threading.Event | None = None,
    on_batch: Callable[[SinkReport], None] | None = None,
) -> SinkReport:
    """Consume ``topic`` in a consumer group into DuckDB; commit offsets after each DuckDB commit.

    With ``once``, return after ``idle_seconds`` without a record once partitions
    are assigned (never from end offsets, which some brokers under-report).
    """
    from kafka import KafkaConsumer

    from ledger.kafka import decode_event, dlq_headers, make_producer

    stop = stop or threading.Event()
    report = SinkReport()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap.split(","),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 6, 100),
        max_poll_records=5000,
    )
    dlq = None
    try:
        last_data = time.monotonic()
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=500)
            records: list[Recorded] = []
            for msgs in polled.values():
                for msg in msgs:
                    try:
                        records.append(decode_event(msg.value))
                    except (ValueError, KeyError, TypeError) as e:
                        dlq = dlq or make_producer(bootstrap)
                        reason = f"{msg.topic}[{msg.partition}]@{msg.offset}: undecodable: {e}"
                        dlq.send(
                            topics.DLQ,
                            value=msg.value,
                            key=msg.key,
                            headers=dlq_headers(reason, msg.topic),
                        )
                        report.dead_lettered += 1
            if polled:
                report.read += sum(len(m) for m in polled.values())
                n = sink.load(records)
                report.loaded += n
                report.duplicates += len(records) - n
                if dlq is not None:
                    dlq.flush()
                consumer.commit()
                last_data = time.monotonic()
                if on_batch:
                    on_batch(report)
            elif once and consumer.assignment():
                if time.monotonic() - last_data >= idle_seconds:
                    break
            elif not consumer.assignment():
                last_data = time.monotonic()  # idle time counts only once assigned
    finally:
        consumer.close(autocommit=False)
        if dlq is not None:
            dlq.close(timeout=5)
    report.max_position = sink.max_position()
    return report


def log_batch(report: SinkReport) -> None:
    print(orjson.dumps(report.as_dict()).decode(), file=sys.stderr, flush=True)
