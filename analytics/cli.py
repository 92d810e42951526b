"""``dossier sink``: ledger events into the analytics DuckDB file."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from ledger import topics
from ledger.cli import data_dir_option, echo_json, open_ledger
from ledger.config import Settings


@click.command()
@click.option(
    "--source",
    type=click.Choice(["kafka", "store"]),
    default=None,
    help="Where events come from (default: kafka if a bootstrap is configured, else store).",
)
@click.option(
    "--bootstrap",
    default=None,
    metavar="HOST:PORT[,HOST:PORT]",
    help="Kafka bootstrap servers (default: $DOSSIER_KAFKA_BOOTSTRAP).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="DuckDB file (default: DATA_DIR/analytics.duckdb).",
)
@click.option("--topic", default=topics.EVENTS, show_default=True)
@click.option("--group", default="dossier-sink", show_default=True, help="Kafka consumer group.")
@click.option("--once", is_flag=True, help="Kafka: stop once idle; store: load and exit.")
@click.option(
    "--idle",
    type=click.FloatRange(min=0.1),
    default=3.0,
    show_default=True,
    help="With --once, seconds without a record that count as idle.",
)
@data_dir_option
def sink(
    source: str | None,
    bootstrap: str | None,
    db_path: Path | None,
    topic: str,
    group: str,
    once: bool,
    idle: float,
    settings: Settings,
) -> None:
    """Load ledger events into DuckDB (table events), idempotent by ledger position.

    From Kafka, offsets are committed after the DuckDB commit (at-least-once,
    duplicates absorbed by the position key). From the store, loading resumes
    after the highest position already in the file.

    Example: dossier sink --source kafka --once ; dossier sink --source store
    """
    from analytics.sink import DuckDBSink, load_from_kafka, load_from_store, log_batch

    address = bootstrap or settings.kafka_bootstrap
    source = source or ("kafka" if address else "store")
    target = DuckDBSink(db_path or settings.data_dir / "analytics.duckdb")
    try:
        if source == "store":
            report = load_from_store(open_ledger(settings), target)
        else:
            if not address:
                raise click.UsageError(
                    "--source kafka needs --bootstrap HOST:PORT or DOSSIER_KAFKA_BOOTSTRAP"
                )
            stop = threading.Event()
            if not once:
                _stop_on_signals(stop)
            report = load_from_kafka(
                address,
                target,
                topic=topic,
                group=group,
                once=once,
                idle_seconds=idle,
                stop=stop,
                on_batch=None if once else log_batch,
            )
        echo_json(report.as_dict() | {"source": source, "db": target.path})
    finally:
        target.close()


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


COMMANDS: list[click.Command] = [sink]
