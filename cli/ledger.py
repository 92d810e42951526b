"""The ledger's own commands: ``dossier ingest``, ``status`` and ``forget``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.options import (
    data_dir_option,
    dry_run_option,
    echo_json,
    format_option,
    open_ledger,
    reject_summary,
    rejects_option,
)
from ledger.settings import Settings


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@dry_run_option("Validate only; write nothing.")
@rejects_option(
    "Where rejected lines go (default FILE.rejects.jsonl, or rejects.jsonl in the data dir for -)."
)
@format_option("text", "json")
@data_dir_option
def ingest(file: str, dry_run: bool, rejects: Path | None, fmt: str, settings: Settings) -> None:
    """Append JSON Lines envelopes; idempotent by event_id.

    Each bad line is reported as FILE:LINE: reason and written to the reject file;
    good lines are stored. Exit status 0 only if nothing was rejected.

    Example: dossier ingest e.jsonl
    """
    from cli import progress
    from ledger.ingest import ingest_lines, write_rejects

    ledger = open_ledger(settings)
    source = "-" if file == "-" else file
    # Binary: a line of invalid UTF-8 is one rejected line, not a crash mid-file.
    stdin = click.get_binary_stream("stdin")
    stream = stdin if file == "-" else open(file, "rb")  # noqa: SIM115
    size = None if file == "-" else progress.file_size(file)
    try:
        with progress.task("ingest", size, unit="bytes", forced=settings.progress) as bar:
            report = ingest_lines(
                ledger,
                stream,
                source=source,
                dry_run=dry_run,
                on_error=lambda e: click.echo(str(e), err=True),
                progress=bar,
            )
    finally:
        if stream is not stdin:
            stream.close()
    if report.errors:
        if rejects is None:
            rejects = (
                settings.data_dir / "rejects.jsonl"
                if file == "-"
                else Path(file + ".rejects.jsonl")
            )
    summary = reject_summary(report, rejects, dry_run, write_rejects)
    if fmt == "json":
        echo_json(summary)
    else:
        verb = "would store" if dry_run else "stored"
        click.echo(
            f"{report.read} read, {verb} {report.stored}, {report.duplicates} already present, "
            f"{report.rejected} rejected" + (f" (see {rejects})" if report.errors else "")
        )
    sys.exit(1 if report.errors else 0)


@click.command()
@format_option("table", "json")
@data_dir_option
def status(fmt: str, settings: Settings) -> None:
    """Counts of events and dossiers, and the latest ledger position.

    Example: dossier status --format json
    """
    s = open_ledger(settings).status()
    if fmt == "json":
        echo_json(s)
    else:
        for key in ("events", "dossiers", "position"):
            click.echo(f"{key:<10}{s[key]:>12}")


@click.command()
@click.argument("pseudonym")
@data_dir_option
def forget(pseudonym: str, settings: Settings) -> None:
    """Crypto-shred an applicant: delete their key so their data is unreadable everywhere.

    Example: dossier forget ap-3f2a9c0e...
    """
    if open_ledger(settings).forget(pseudonym):
        click.echo(
            f"forgot {pseudonym}: personal data in every event is now unreadable; chains still verify"
        )
    else:
        raise click.ClickException(f"no key for {pseudonym} (unknown or already forgotten)")


COMMANDS: list[click.Command] = [ingest, status, forget]
