"""``dossier import`` and ``dossier export``: case logs in, process-mining logs out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


@click.command("import")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The mapping file (TOML): how cases and events become envelopes.",
)
@dry_run_option("Map and judge every case; write nothing.")
@rejects_option("Where the cases not imported go (default LOG.rejects.jsonl).")
@format_option("text", "json")
@data_dir_option
def import_(
    log: Path,
    mapping_path: Path,
    dry_run: bool,
    rejects: Path | None,
    fmt: str,
    settings: Settings,
) -> None:
    """Import a case log (XES, .xes.gz, or CSV) through a mapping file.

    Each case becomes a dossier, each log event an envelope, appended with the
    same validation and idempotency as ingest (importing twice adds nothing).
    Every case that cannot be imported is reported with its reason (case id and,
    for CSV, line) and written to the reject file; the others are imported.
    Exit status 0 only if every case was imported.

    Example: dossier import cases.xes.gz --mapping city.toml
    """
    from cli import progress
    from interchange.cases import LogError
    from interchange.importer import import_log, write_rejects
    from interchange.mapping import load_mapping

    mapping = load_mapping(mapping_path)
    ledger = open_ledger(settings)
    xes = mapping.format == "xes"
    failure: str | None = None
    with progress.task(
        "import",
        progress.file_size(log) if xes else None,
        unit="bytes" if xes else "rows",
        forced=settings.progress,
    ) as bar:
        try:
            report = import_log(
                ledger,
                log,
                mapping,
                dry_run=dry_run,
                on_error=lambda e: click.echo(str(e), err=True),
                progress=bar,
            )
        except LogError as e:
            failure = str(e)
            report = None
    if report is None:
        raise click.ClickException(failure or "the log could not be read")
    if report.errors:
        rejects = rejects or Path(str(log) + ".rejects.jsonl")
    summary = reject_summary(report, rejects, dry_run, write_rejects)
    if fmt == "json":
        echo_json(summary)
    else:
        verb = "would store" if dry_run else "stored"
        click.echo(
            f"{report.cases} cases, {report.imported} imported, {report.rejected} rejected; "
            f"{report.events} events read, {report.duplicate_rows} duplicate rows dropped, "
            f"{verb} {report.stored}, {report.duplicates} already present"
            + (f" (see {rejects})" if report.errors else "")
        )
    sys.exit(1 if report.errors else 0)


@click.command("export")
@click.option(
    "--xes",
    "xes_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an XES log (.xes, or .xes.gz).",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a CSV log (case:concept:name, concept:name, time:timestamp, org:resource...).",
)
@click.option(
    "--parquet",
    "parquet_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the analytics tables as Parquet files into this directory.",
)
@click.option(
    "--from",
    "since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Dossiers received on or after this day (YYYY-MM-DD, local).",
)
@click.option(
    "--to",
    "until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Dossiers received on or before this day (YYYY-MM-DD, local).",
)
@click.option(
    "--now",
    default=None,
    metavar="INSTANT",
    help="Instant of the open dossiers' on-time class (default: the log's latest business time).",
)
@format_option("text", "json")
@data_dir_option
def export(
    xes_path: Path | None,
    csv_path: Path | None,
    parquet_dir: Path | None,
    since: Any,
    until: Any,
    now: str | None,
    fmt: str,
    settings: Settings,
) -> None:
    """Export the ledger for process mining: one case per dossier, pseudonyms only.

    XES and CSV carry each dossier's procedure, agency, channel, appointment,
    due instant and on-time class, and one event per ledger event.

    Example: dossier export --xes log.xes.gz --from 2025-09-01 --to 2025-09-30
    """
    from cli import progress
    from ledger.domain.events import EnvelopeError, parse_instant

    if not (xes_path or csv_path or parquet_dir):
        raise click.UsageError("give --xes FILE, --csv FILE and/or --parquet DIR")
    instant = None
    if now is not None:
        try:
            instant = parse_instant(now, "--now")
        except EnvelopeError as e:
            raise click.BadParameter(e.reason, param_hint="--now") from None
    summary: dict[str, Any] = {}
    if xes_path or csv_path:
        from interchange.export import export_log

        ledger = open_ledger(settings)
        with progress.task(
            "export", ledger.max_position() or None, unit="events", forced=settings.progress
        ) as bar:
            summary = export_log(
                ledger,
                ledger.rules,
                xes_path=xes_path,
                csv_path=csv_path,
                since=since.date() if since else None,
                until=until.date() if until else None,
                now=instant,
                progress=bar,
            )
    if parquet_dir:
        from interchange.parquet import export_parquet

        try:
            summary["parquet"] = export_parquet(settings, parquet_dir)
        except (FileNotFoundError, ValueError) as e:  # e.g. no analytics database yet
            raise click.ClickException(f"--parquet: {e}") from None
    if fmt == "json":
        echo_json(summary)
    else:
        if xes_path or csv_path:
            written = ", ".join(str(p) for p in (xes_path, csv_path) if p)
            click.echo(f"{summary['cases']} cases, {summary['events']} events -> {written}")
        if parquet_dir:
            click.echo(f"parquet -> {parquet_dir}: {summary['parquet']}")


COMMANDS = [import_, export]
