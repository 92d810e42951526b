"""The analysts' commands: ``dossier sink`` (load DuckDB), ``query`` (SQL on it) and ``report``."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from cli.options import (
    bootstrap_option,
    data_dir_option,
    db_option,
    echo_json,
    format_option,
    open_ledger,
    stop_on_signals,
)
from ledger import topics
from ledger.settings import Settings


@click.command()
@click.option(
    "--source",
    type=click.Choice(["kafka", "store"]),
    default=None,
    help="Where events come from (default: kafka if a bootstrap is configured, else store).",
)
@bootstrap_option
@db_option("DuckDB file (default: DATA_DIR/analytics.duckdb).")
@click.option("--topic", default=topics.EVENTS, show_default=True)
@click.option("--group", default="dossier-sink", show_default=True, help="Kafka consumer group.")
@click.option(
    "--outputs/--no-outputs",
    default=True,
    show_default=True,
    help="Kafka: also load dossier.signals, dossier.alerts and dossier.metrics.",
)
@click.option(
    "--page",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Store: events per transaction (and per published snapshot).",
)
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
    outputs: bool,
    page: int,
    once: bool,
    idle: float,
    settings: Settings,
) -> None:
    """Load the analysts' database (events, dossiers, handovers; from Kafka also signals,
    alerts, metrics_daily), idempotent by ledger position and by output id.

    From Kafka, offsets are committed after the DuckDB commit (at-least-once,
    duplicates skipped by each dossier's last position). From the store, loading resumes
    after the highest position already in the file. A read-only snapshot is
    published after each batch for dossier query and other readers.

    Example: dossier sink --source kafka --once ; dossier sink --source store
    """
    from analytics.connection import database_path
    from analytics.sink import DuckDBSink, load_from_kafka, load_from_store, log_batch
    from ledger.bootstrap import open_rules

    address = bootstrap or settings.kafka_bootstrap
    source = source or ("kafka" if address else "store")
    target = DuckDBSink(
        db_path or database_path(settings),
        open_rules(settings),
        memory=settings.duckdb_memory,
        checkpoint=settings.duckdb_checkpoint,
    )
    try:
        if source == "store":
            report = load_from_store(open_ledger(settings), target, page=page)
        else:
            if not address:
                raise click.UsageError(
                    "--source kafka needs --bootstrap HOST:PORT or DOSSIER_KAFKA_BOOTSTRAP"
                )
            stop = threading.Event()
            if not once:
                stop_on_signals(stop)
            report = load_from_kafka(
                address,
                target,
                settings=settings,
                topic=topic,
                group=group,
                once=once,
                idle_seconds=idle,
                stop=stop,
                on_batch=None if once else log_batch,
                outputs=outputs,
            )
        echo_json(report.as_dict() | {"source": source, "db": target.path})
    finally:
        target.close()


READ_DB = "DuckDB file (default: DATA_DIR/analytics.duckdb; its published snapshot is read)."


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@click.command()
@click.argument("sql")
@format_option("table", "csv", "json")
@db_option(READ_DB)
@data_dir_option
def query(sql: str, fmt: str, db_path: Path | None, settings: Settings) -> None:
    """Run SQL on the analysts' database (read-only, on its published snapshot).

    Safe while dossier process or dossier sink is loading: it reads the last
    published snapshot and never blocks the loader.

    Example: dossier query "SELECT * FROM report_period WHERE period = '2025-09'" --format csv
    """
    import duckdb

    from analytics.connection import database_path
    from analytics.snapshot import connect_reader
    from cli.render import table, to_csv

    con, _ = connect_reader(db_path or database_path(settings))
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description] if cur.description else []
        rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()] if columns else []
    except duckdb.Error as e:
        raise click.ClickException(f"query failed: {e}") from None
    finally:
        con.close()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, default=_json_default))
    elif fmt == "csv":
        click.echo(to_csv([{c: _plain(r[c]) for c in columns} for r in rows], columns))
    else:
        click.echo(table([{c: _plain(r[c]) for c in columns} for r in rows], columns))


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return value


@click.command()
@click.option("--period", required=True, metavar="YYYY-MM|YYYY-Qn|YYYY")
@click.option("--agency", default=None, metavar="CODE", help="One agency only.")
@format_option("md", "csv", "html")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file (default: stdout for md and csv; report-PERIOD.html for html).",
)
@db_option(READ_DB)
@data_dir_option
def report(
    period: str,
    agency: str | None,
    fmt: str,
    out: Path | None,
    db_path: Path | None,
    settings: Settings,
) -> None:
    """The periodic report (form II.06a counts, 766 progress, charts) for a period.

    Every figure names the view it comes from. HTML is one self-contained file
    (charts by plotly, inlined) that works offline.

    Example: dossier report --period 2025-Q3 --format html --out q3.html
    """
    import tempfile

    from analytics.report import parse_period, write_report

    try:
        parse_period(period)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--period") from None
    to_stdout = out is None and fmt != "html"
    target = out or Path(f"report-{period}.html")
    if to_stdout:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_report(settings, period, fmt, Path(tmp) / "r", agency, db_path=db_path)
            click.echo(path.read_text(encoding="utf-8"), nl=False)
        return
    path = write_report(settings, period, fmt, target, agency, db_path=db_path)
    click.echo(str(path), err=True)


COMMANDS: list[click.Command] = [sink, query, report]
