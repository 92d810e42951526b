"""Proving the ledger unaltered: ``dossier verify``, ``digest`` and ``keys init``.

``verify`` recomputes hash chains and checks digests and the witnesses (a series of
signed digests, the relay's copy on Kafka); ``digest`` issues a Merkle root, signed
with the key ``keys init`` creates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from cli.options import (
    bootstrap_option,
    data_dir_option,
    echo_json,
    format_option,
    kafka_bootstrap,
    open_ledger,
)
from ledger.settings import Settings


@click.command()
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
@bootstrap_option
@format_option("text", "json")
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
    from cli import progress
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
        check_signature(digest, digest_file, public_key)
    try:
        ledger = open_ledger(settings)
    except STORE_ERRORS as e:  # e.g. a corrupted SQLite file
        click.echo(f"UNREADABLE: store: {e}", err=True)
        sys.exit(1)
    if dossier_id:
        problems = run_verify(ledger, dossier_id)
    elif all_ or digest:
        try:
            total = ledger.max_position()
        except STORE_ERRORS:  # verify names it as unreadable
            total = None
        with progress.task("verify", total, unit="events", forced=settings.progress) as bar:
            problems = run_verify(ledger, None, bar)
    else:
        problems = []
    if digest is not None:
        try:
            problems += check_digest(ledger, digest)
        except ValueError as e:
            raise click.ClickException(f"{digest_file}: {e}") from None
    if digests_dir or against_kafka:
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


@click.command()
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
    from ledger.signing import key_path, sign_digest

    d = issue_digest(open_ledger(settings), position)
    if sign:
        d = sign_digest(d, key_path(settings))
    text = json.dumps(d, sort_keys=True)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    click.echo(text)


@click.group()
def keys() -> None:
    """Signing keys of the ledger's digests."""


@keys.command("init")
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing key (old digests stay valid only against the old public key).",
)
@data_dir_option
def keys_init(force: bool, settings: Settings) -> None:
    """Create the digest signing key (DATA_DIR/signing.key or $DOSSIER_SIGNING_KEY); print the public key.

    Publish the public key once, out of band: auditors check signed digests
    against it (dossier verify --digest FILE --public-key KEY).

    Example: dossier keys init
    """
    from ledger.signing import init_keys, key_path, public_path

    path = key_path(settings)
    public = init_keys(path, force=force)
    echo_json(
        {
            "algorithm": "ed25519",
            "public_key": public,
            "private_key_file": str(path),
            "public_key_file": str(public_path(path)),
        }
    )


def check_signature(digest: Any, digest_file: Path, public_key: str | None) -> None:
    """Refuse (exit 1) a digest whose signature does not verify with ``public_key``."""
    from ledger.signing import SignatureError, verify_signature

    if public_key is None:
        if isinstance(digest, dict) and "signature" in digest:
            click.echo(f"note: {digest_file}: signature not checked (no --public-key)", err=True)
        return
    try:
        verify_signature(digest, public_key)
    except SignatureError as e:
        click.echo(f"REFUSED: {digest_file}: {e}", err=True)
        sys.exit(1)


def witness_checks(
    ledger: Any,
    settings: Settings,
    digests_dir: Path | None,
    public_key: str | None,
    against_kafka: bool,
    bootstrap: str | None,
) -> list[Any]:
    """Problems from a digest series and from dossier.events; summaries on stderr."""
    from ledger.signing import SignatureError
    from ledger.witness import check_series, compare_with_topic

    problems: list[Any] = []
    if digests_dir is not None:
        try:
            series = check_series(ledger, digests_dir, public_key)
        except SignatureError as e:
            click.echo(f"REFUSED: {e}", err=True)
            sys.exit(1)
        click.echo(series.summary(), err=True)
        problems += series.problems
    if against_kafka:
        from kafka.errors import KafkaError

        from ledger.kafka import TopicError

        address = kafka_bootstrap(bootstrap, settings)
        try:
            report = compare_with_topic(ledger, address)
        except (TopicError, KafkaError) as e:
            raise click.ClickException(f"--against-kafka: {type(e).__name__}: {e}") from None
        click.echo(report.summary(), err=True)
        problems += report.problems
    return problems


COMMANDS: list[click.Command] = [verify, digest, keys]
