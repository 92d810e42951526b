"""The analytics sink: ledger events into a DuckDB file, idempotent by ledger ``position``.

Two sources, one loader:

* ``kafka`` (the deployment): a consumer group on ``dossier.events``. Offsets are
  committed only after the DuckDB transaction that holds the batch has
  committed, so a crash replays a batch at worst, and the replay is absorbed by
  each dossier's last folded position (the relay is at-least-once; this is where
  its duplicates die).
* ``store`` (the embedded default): read the ledger's notification log directly
  from the highest position already loaded.

Each batch is one DuckDB transaction in which :class:`analytics.loader.Loader`
writes ``events`` (through a pyarrow table, ``INSERT OR IGNORE`` by position),
``dossiers``, ``handovers`` and the month-end rows; from Kafka the output topics
``dossier.signals``, ``dossier.alerts`` and ``dossier.metrics`` go into
``signals``, ``alerts`` and ``metrics_daily`` in the same transaction (idempotent
by id and key). After each commit a read-only snapshot is published for readers
(:mod:`analytics.snapshot`). A record that cannot be decoded goes to
``dossier.dlq`` with the reason in a header; it is never skipped silently.
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

from analytics.connection import connect_writer, replace_rows
from analytics.loader import Loader
from analytics.snapshot import publish, publish_pending
from ledger import topics
from ledger.domain.events import Recorded
from ledger.domain.rules import load_rules
from ledger.kafka import decode_event, dlq_headers, make_producer, require_project_topics
from streams.outputs import TABLES

if TYPE_CHECKING:
    import duckdb

    from ledger.application import DossierLedger
    from ledger.domain.rules import RuleBook
    from ledger.settings import Settings

TABLE = "events"
OUTPUT_TOPICS: dict[str, str] = {
    topics.SIGNALS: "signals",
    topics.ALERTS: "alerts",
    topics.METRICS: "metrics_daily",
}
"""Output topic -> DuckDB table; the record value is the row dict of :mod:`streams.outputs`."""


@dataclass
class SinkReport:
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    max_position: int = 0
    outputs: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class DuckDBSink:
    """The analysts' database file; ``load`` is idempotent by position, outputs by id/key.

    Each batch is one DuckDB transaction (the :class:`~analytics.loader.Loader`
    writes inside it), followed by a snapshot publication for readers.
    """

    def __init__(
        self,
        path: str | Path,
        rules: RuleBook | None = None,
        *,
        memory: str | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """``memory``, ``checkpoint``: the writer's limits (:func:`connect_writer`)."""

        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.con: duckdb.DuckDBPyConnection = connect_writer(
            self.path, memory=memory, checkpoint=checkpoint
        )
        if rules is None:
            rules = load_rules()
        self.loader = Loader(self.con, rules)
        if self.path != ":memory:":
            publish(self.path, force=True)  # readers get a snapshot before the first batch

    def close(self) -> None:
        self.con.close()
        if self.path != ":memory:":
            publish(self.path, force=True)

    def max_position(self) -> int:
        return int(
            self.con.execute(f"SELECT coalesce(max(position), 0) FROM {TABLE}").fetchall()[0][0]
        )

    def count(self) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0])

    def load(
        self,
        records: Iterable[Recorded],
        outputs: dict[str, list[dict[str, Any]]] | None = None,
    ) -> int:
        """Apply records (and output rows by table) in one transaction; return new events."""
        con = self.con
        con.execute("BEGIN")
        try:
            inserted = self.loader.apply(list(records))
            for table, rows in (outputs or {}).items():
                if rows:
                    insert_outputs(con, table, rows)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.loader.reset()
            raise
        if self.path != ":memory:":
            publish(self.path)
        return inserted


def insert_outputs(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert signal, alert or metric rows; idempotent by id (metrics: the latest row of a
    key replaces the provisional one)."""
    import pyarrow as pa

    columns, key = TABLES[table]
    latest = table == "metrics_daily"
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:  # one row per key in a statement: the last (metrics) or the first (ids)
        k = tuple(str(r.get(c)) for c in key)
        if latest or k not in unique:
            unique[k] = r
    rows = list(unique.values())
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValueError(f"{table}: row without {', '.join(missing)}")
    data = {
        c: [orjson.dumps(r[c]).decode() if columns[c] == "JSON" else _text(r[c]) for r in rows]
        for c in columns
    }
    casts = ", ".join(f'CAST("{c}" AS {t.split()[0]}) AS "{c}"' for c, t in columns.items())
    select = f"SELECT {casts} FROM sink_outputs"
    con.register("sink_outputs", pa.table({c: pa.array(v, pa.string()) for c, v in data.items()}))
    try:
        if latest:
            replace_rows(con, table, select, list(key))
        else:
            con.execute(f"INSERT OR IGNORE INTO {table} {select}")
    finally:
        con.unregister("sink_outputs")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
    settings: Settings,
    topic: str = topics.EVENTS,
    group: str = "dossier-sink",
    once: bool = False,
    idle_seconds: float = 3.0,
    session_timeout_ms: int = 6000,
    stop: threading.Event | None = None,
    on_batch: Callable[[SinkReport], None] | None = None,
    outputs: bool = True,
) -> SinkReport:
    """Consume ``topic`` in a consumer group into DuckDB; commit offsets after each DuckDB commit.

    With ``once``, return after ``idle_seconds`` without a record once partitions
    are assigned (never from end offsets, which some brokers under-report).
    ``settings`` give the topics' configured partition count and the dead letters'
    Kafka client.
    """
    from kafka import KafkaConsumer

    stop = stop or threading.Event()
    report = SinkReport()
    wanted = [topic, *(t for t in OUTPUT_TOPICS if outputs)]

    require_project_topics(bootstrap, wanted, settings)  # never let a subscription auto-create them
    consumer = KafkaConsumer(
        *wanted,
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
            rows: dict[str, list[dict[str, Any]]] = {}
            for msgs in polled.values():
                for msg in msgs:
                    try:
                        if msg.topic in OUTPUT_TOPICS and msg.topic != topic:
                            row = orjson.loads(msg.value)
                            if not isinstance(row, dict):
                                raise ValueError("the value is not a JSON object")
                            rows.setdefault(OUTPUT_TOPICS[msg.topic], []).append(row)
                        else:
                            records.append(decode_event(msg.value))
                    except (ValueError, KeyError, TypeError) as e:
                        dlq = dlq or make_producer(bootstrap, settings.kafka_client)
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
                n = sink.load(records, rows)
                report.loaded += n
                report.duplicates += len(records) - n
                report.outputs += sum(len(r) for r in rows.values())
                if dlq is not None:
                    dlq.flush()
                consumer.commit()
                last_data = time.monotonic()
                if on_batch:
                    on_batch(report)
            elif sink.path != ":memory:" and publish_pending(sink.path):
                pass  # idle: readers get the last batch now, not at the next one
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
