"""``dossier keys init`` (the Ed25519 key pair that signs digests) and the trust
checks behind ``dossier verify --public-key / --digests / --against-kafka`` and
``dossier digest --sign``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ledger.cli import data_dir_option, echo_json
from ledger.config import Settings


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

    path = key_path(settings.data_dir)
    try:
        public = init_keys(path, force=force)
    except FileExistsError as e:
        raise click.ClickException(str(e)) from None
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


def sign_or_fail(digest: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from ledger.signing import SignatureError, key_path, sign_digest

    try:
        return sign_digest(digest, key_path(settings.data_dir))
    except (FileNotFoundError, SignatureError) as e:
        raise click.ClickException(str(e)) from None


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
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        click.echo(series.summary(), err=True)
        problems += series.problems
    if against_kafka:
        from kafka.errors import KafkaError

        from ledger.kafka import KafkaConfigError, TopicError, require_bootstrap

        try:
            address = require_bootstrap(bootstrap or settings.kafka_bootstrap)
            report = compare_with_topic(ledger, address)
        except KafkaConfigError as e:
            raise click.UsageError(str(e)) from None
        except (TopicError, KafkaError) as e:
            raise click.ClickException(f"--against-kafka: {type(e).__name__}: {e}") from None
        click.echo(report.summary(), err=True)
        problems += report.problems
    return problems


COMMANDS: list[click.Command] = [keys]
