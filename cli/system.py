"""The whole system on one machine: ``dossier demo`` and ``dossier run``."""

from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path

import click

from cli.options import data_dir_option, echo_json, format_option, stop_on_signals
from ledger.settings import Settings


@click.command("demo")
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@format_option("text", "json")
@data_dir_option
def demo(days: int, seed: int, fmt: str, settings: Settings) -> None:
    """The whole system in one command, on the embedded default.

    Simulates a province, ingests it into the SQLite ledger, verifies every chain,
    builds the read models, runs the stream processors (alerts, signals, on-time
    metrics, the analysts' DuckDB) and writes the HTML report, then prints a
    summary and commands to try next. Interrupted, it resumes when started again.

    Example: dossier demo --days 90 --seed 7
    """
    from cli import progress
    from system.demo import run_demo, summary_text

    tasks = functools.partial(progress.task, forced=settings.progress)
    try:
        summary = run_demo(
            settings, days, seed, echo=lambda s: click.echo(s, err=True), tasks=tasks
        )
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)
    if fmt == "json":
        echo_json(summary)
    else:
        click.echo(summary_text(summary))


@click.command("run")
@click.option(
    "--inbox",
    default=None,
    help="Folder watched for .jsonl files, or - for standard input (default: DATA_DIR/inbox).",
)
@click.option(
    "--poll", type=click.FloatRange(min=0.05), default=1.0, show_default=True, help="Seconds."
)
@click.option(
    "--digest-every",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds between signed digests to DATA_DIR/digests (also at each day's close; needs `dossier keys init`).",
)
@data_dir_option
def run(inbox: str | None, poll: float, digest_every: float, settings: Settings) -> None:
    """The long-running embedded service: ingest what arrives, keep everything current.

    JSON Lines files dropped into the inbox are ingested and moved to done/, or to
    rejected/ with NAME.rejects.jsonl; read models, stream processors (alerts,
    signals, metrics) and the analysts' DuckDB follow. SIGTERM or Ctrl-C stops it
    cleanly; started again, it resumes.

    Example: dossier run --inbox ./inbox
    """
    from system.service import Service

    stop = threading.Event()
    stop_on_signals(stop)
    stdin = click.get_binary_stream("stdin") if inbox == "-" else None
    folder = None if inbox == "-" else Path(inbox) if inbox else settings.data_dir / "inbox"
    service = Service(
        settings,
        folder,
        stop=stop,
        log=lambda s: click.echo(s, err=True),
        digest_every=digest_every,
    )
    if folder is not None:
        click.echo(f"watching {folder} (Ctrl-C to stop)", err=True)
    try:
        stats = service.run(poll=poll, stdin=stdin)
    finally:
        service.close()
    echo_json(stats.as_dict())


COMMANDS: list[click.Command] = [demo, run]
