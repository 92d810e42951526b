"""The main-job commands: ``serve``, ``demo`` and ``run``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ledger.cli import data_dir_option, echo_json
from ledger.config import Settings


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@data_dir_option
def serve(host: str, port: int, settings: Settings) -> None:
    """Read-only web pages and JSON API: dossiers, dashboards, live alerts.

    Pages: / (dashboard), /agencies/AGENCY, /dossiers/CODE, /alerts (live);
    JSON under /api/ (documented at /api/openapi.json). Nothing here writes.

    Example: dossier serve --port 8080
    """
    import uvicorn

    from web.app import create_app
    from web.site import NoLedger

    try:
        app = create_app(settings)
    except NoLedger as e:
        raise click.ClickException(str(e)) from None
    app.state.site.warm()
    click.echo(f"serving {settings.data_dir} on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


@click.command("demo")
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@data_dir_option
def demo(days: int, seed: int, fmt: str, settings: Settings) -> None:
    """The whole system in one command, on the embedded default.

    Simulates a province, ingests it into the SQLite ledger, verifies every chain,
    builds the read models, runs the stream processors (alerts, signals, on-time
    metrics, the analysts' DuckDB) and writes the HTML report, then prints a
    summary and commands to try next. Interrupted, it resumes when started again.

    Example: dossier demo --days 90 --seed 7
    """
    from web.demo import DemoFailed, run_demo, summary_text

    try:
        summary = run_demo(settings, days, seed, echo=lambda s: click.echo(s, err=True))
    except DemoFailed as e:
        raise click.ClickException(str(e)) from None
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
    import threading

    from ledger.cli import stop_on_signals
    from web.service import Service

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


COMMANDS: list[click.Command] = [serve, demo, run]
