"""The ``dossier`` command: a thin shell over the Python API.

Every command takes ``--data-dir`` (else ``DOSSIER_DATA_DIR``, else
``./dossier-data``); the store is chosen by ``DOSSIER_STORE``.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ledger.config import Settings


def data_dir_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--data-dir``, resolved into ``settings`` for the command."""

    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default: $DOSSIER_DATA_DIR or ./dossier-data).",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, data_dir: Path | None, **kwargs: Any) -> Any:
        return fn(*args, settings=Settings.from_env(data_dir), **kwargs)

    return wrapper


def open_ledger(settings: Settings):  # noqa: ANN201 - keeps imports lazy for fast --help
    from ledger.bootstrap import open_ledger as _open

    return _open(settings)


def reject_summary(
    report: Any, rejects: Path | None, dry_run: bool, write: Callable[[Any, Any], None]
) -> dict[str, Any]:
    """Write a report's rejections to ``rejects`` (when there are any) with ``write``, and
    return the command's JSON summary naming that file (ingest and import alike)."""
    if report.errors:
        assert rejects is not None
        rejects.parent.mkdir(parents=True, exist_ok=True)
        with rejects.open("w", encoding="utf-8") as fout:
            write(report.errors, fout)
    return report.as_dict() | {
        "dry_run": dry_run,
        "rejects_file": str(rejects) if report.errors else None,
    }


def kafka_bootstrap(given: str | None, settings: Settings | None = None) -> str:
    """``--bootstrap``, else ``DOSSIER_KAFKA_BOOTSTRAP``; a usage error naming both if neither."""
    from ledger.kafka import KafkaConfigError, require_bootstrap

    try:
        return require_bootstrap(given or (settings or Settings.from_env()).kafka_bootstrap)
    except KafkaConfigError as e:
        raise click.UsageError(str(e)) from None


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """SIGTERM and SIGINT set ``stop``: a long-running command ends between pages, cleanly."""
    stop = stop or threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=None, sort_keys=True))


@click.group()
@click.version_option(package_name="dossier-ledger")
def main() -> None:
    """Administrative dossiers as immutable, verifiable events."""


@main.command()
@click.option(
    "--days", type=click.IntRange(min=1), required=True, help="Days of activity to simulate."
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    required=True,
    help="Events (JSON Lines; - for standard output, e.g. into `dossier ingest -`).",
)
@click.option(
    "--labels",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ground truth of injected irregularities (JSON Lines).",
)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First simulated day (default 2025-09-01).",
)
@click.option(
    "--dossiers-per-day",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Mean receipts per ordinary working day (default 300; 10000: a large "
    "province, ~2.5 million dossiers a year).",
)
def simulate(
    days: int,
    seed: int,
    out: Path,
    labels: Path | None,
    start: Any,
    dossiers_per_day: float | None,
) -> None:
    """Simulate a province's dossiers as JSON Lines envelopes (streamed as the days go).

    Example: dossier simulate --days 30 --seed 1 --out e.jsonl --labels labels.jsonl
    """
    from ledger import progress
    from ledger.simulator import Params
    from ledger.simulator import simulate as run

    kwargs: dict[str, Any] = {"start": start.date()} if start else {}
    if dossiers_per_day is not None:
        kwargs["params"] = Params(dossiers_per_day=dossiers_per_day)
    bar = kwargs["progress"] = progress.task("simulate", total=days, unit="days")
    # click.open_file: "-" is standard output, anything else a file opened for writing.
    with bar, click.open_file(str(out), "w", encoding="utf-8") as fout:
        if labels:
            with labels.open("w", encoding="utf-8") as flab:
                summary = run(days, seed, fout, flab, **kwargs)
        else:
            summary = run(days, seed, fout, None, **kwargs)
    click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True), err=True)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Validate only; write nothing.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where rejected lines go (default FILE.rejects.jsonl, or rejects.jsonl in the data dir for -).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@data_dir_option
def ingest(file: str, dry_run: bool, rejects: Path | None, fmt: str, settings: Settings) -> None:
    """Append JSON Lines envelopes; idempotent by event_id.

    Each bad line is reported as FILE:LINE: reason and written to the reject file;
    good lines are stored. Exit status 0 only if nothing was rejected.

    Example: dossier ingest e.jsonl
    """
    from ledger import progress
    from ledger.ingest import ingest_lines, write_rejects

    ledger = open_ledger(settings)
    source = "-" if file == "-" else file
    # Binary: a line of invalid UTF-8 is one rejected line, not a crash mid-file.
    stdin = click.get_binary_stream("stdin")
    stream = stdin if file == "-" else open(file, "rb")  # noqa: SIM115
    size = None if file == "-" else progress.file_size(file)
    try:
        with progress.task("ingest", size, unit="bytes") as bar:
            report = ingest_lines(
                ledger,
                progress.counting(stream, bar),
                source=source,
                dry_run=dry_run,
                on_error=lambda e: click.echo(str(e), err=True),
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


@main.command()
@click.argument("dossier_id", required=False)
@click.option(
    "--all", "all_", is_flag=True, help="Verify every dossier and the ledger's positions."
)
@click.option(
    "--digest",
    "digest_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also prove the log still extends this digest.",
)
@click.option(
    "--public-key", default=None, help="Refuse digests not signed by this key (hex or file)."
)
@click.option(
    "--digests",
    "digests_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Check a folder of digests; name the first that no longer holds.",
)
@click.option("--against-kafka", is_flag=True, help="Compare every hash with dossier.events.")
@click.option(
    "--bootstrap",
    default=None,
    help="Kafka for --against-kafka (default: $DOSSIER_KAFKA_BOOTSTRAP).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@data_dir_option
def verify(
    dossier_id: str | None,
    all_: bool,
    digest_file: Path | None,
    public_key: str | None,
    digests_dir: Path | None,
    against_kafka: bool,
    bootstrap: str | None,
    fmt: str,
    settings: Settings,
) -> None:
    """Recompute hash chains from the store; name every altered, deleted, inserted or reordered event.

    Exit status 1 if anything is wrong.

    Example: dossier verify --all ; dossier verify --digest digest.json --public-key KEY
    """
    from ledger import progress
    from ledger.application import DossierNotFound
    from ledger.audit import STORE_ERRORS, check_digest
    from ledger.audit import verify as run_verify

    if not (dossier_id or all_ or digest_file or digests_dir or against_kafka):
        raise click.UsageError(
            "give a DOSSIER_ID, --all, --digest FILE, --digests DIR or --against-kafka"
        )
    if dossier_id and all_:
        raise click.UsageError("give a DOSSIER_ID or --all, not both")
    digest = None
    if digest_file:
        try:
            digest = json.loads(digest_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise click.ClickException(f"{digest_file}: not a digest: {e}") from None
        from ledger.trust_cli import check_signature

        check_signature(digest, digest_file, public_key)
    try:
        ledger = open_ledger(settings)
    except STORE_ERRORS as e:  # e.g. a corrupted SQLite file
        click.echo(f"UNREADABLE: store: {e}", err=True)
        sys.exit(1)
    try:
        if dossier_id:
            problems = run_verify(ledger, dossier_id)
        elif all_ or digest:
            try:
                total = ledger.max_position()
            except STORE_ERRORS:  # verify names it as unreadable
                total = None
            with progress.task("verify", total, unit="events") as bar:
                problems = run_verify(ledger, None, bar)
        else:
            problems = []
    except DossierNotFound as e:
        raise click.ClickException(str(e)) from None
    if digest is not None:
        try:
            problems += check_digest(ledger, digest)
        except ValueError as e:
            raise click.ClickException(f"{digest_file}: {e}") from None
    if digests_dir or against_kafka:
        from ledger.trust_cli import witness_checks

        problems += witness_checks(
            ledger, settings, digests_dir, public_key, against_kafka, bootstrap
        )
    try:
        status = ledger.status()
    except STORE_ERRORS:
        status = {"events": "?", "dossiers": "?", "position": "?"}
    scope = dossier_id or ("all dossiers" if all_ or digest else "the log against its witnesses")
    if fmt == "json":
        echo_json(
            {"ok": not problems, "scope": scope, "problems": [str(p) for p in problems], **status}
        )
    else:
        for p in problems:
            click.echo(str(p))
        verdict = "OK" if not problems else f"FAILED: {len(problems)} problem(s)"
        click.echo(
            f"verified {scope} ({status['events']} events, {status['dossiers']} dossiers): {verdict}"
        )
    sys.exit(1 if problems else 0)


@main.command()
@click.option(
    "--position",
    type=click.IntRange(min=0),
    default=None,
    help="Up to this position (default: latest).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write it to a file.",
)
@click.option("--sign", is_flag=True, help="Sign it (Ed25519; key from dossier keys init).")
@data_dir_option
def digest(position: int | None, out: Path | None, sign: bool, settings: Settings) -> None:
    """Print a Merkle root over all events up to a ledger position.

    Example: dossier digest --sign --out digest.json
    """
    from ledger.audit import issue_digest

    d = issue_digest(open_ledger(settings), position)
    if sign:
        from ledger.trust_cli import sign_or_fail

        d = sign_or_fail(d, settings)
    text = json.dumps(d, sort_keys=True)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    click.echo(text)


@main.command()
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
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


@main.command()
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


def _add_extension_commands() -> None:
    """Commands defined next to the part they front (relay, projections, ...)."""
    from analytics import cli as analytics_cli
    from ledger import relay_cli, trust_cli
    from ledger.eventlog import cli as eventlog_cli
    from projections import cli as projections_cli
    from streams import cli as streams_cli
    from web import cli as web_cli

    for module in (
        relay_cli,
        trust_cli,
        projections_cli,
        analytics_cli,
        streams_cli,
        eventlog_cli,
        web_cli,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_add_extension_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
