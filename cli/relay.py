"""``dossier kafka init`` and ``dossier relay``: the ledger's bridge to Kafka."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from cli.options import (
    bootstrap_option,
    data_dir_option,
    echo_json,
    kafka_bootstrap,
    open_ledger,
    stop_on_signals,
)
from ledger import topics
from ledger.settings import Settings


@click.group()
def kafka() -> None:
    """Kafka topics of the deployment."""


@kafka.command("init")
@bootstrap_option
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=None,
    help="Partitions of each new keyed topic (default: $DOSSIER_KAFKA_PARTITIONS or 12).",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Replicas of each new topic.",
)
@data_dir_option
def kafka_init(
    bootstrap: str | None, partitions: int | None, replication_factor: int, settings: Settings
) -> None:
    """Create the project's topics if missing; print what was done as JSON.

    An existing topic is reported "exists" if its partition count is the one
    asked for, else "mismatch" (exit 1): it is never repartitioned.

    Example: dossier kafka init --bootstrap 127.0.0.1:9092 --partitions 12
    """
    from kafka.errors import KafkaError

    from ledger.kafka import (
        configured_partitions,
        ensure_topics,
        expected_partitions,
        partition_counts,
    )

    address = kafka_bootstrap(bootstrap, settings)
    partitions = partitions or configured_partitions(settings)
    try:
        result = ensure_topics(
            address, partitions=partitions, replication_factor=replication_factor
        )
        wrong = [name for name, what in result.items() if what == "mismatch"]
        counts = partition_counts(address, wrong) if wrong else {}
    except KafkaError as e:
        raise click.ClickException(f"Kafka at {address}: {type(e).__name__}: {e}") from None
    out: dict[str, Any] = {"topics": result, "partitions": partitions}
    if wrong:
        out["mismatches"] = {
            n: {"partitions": counts.get(n), "expected": expected_partitions(n, partitions)}
            for n in wrong
        }
    echo_json(out)
    for name in wrong:
        click.echo(
            f"MISMATCH: {name} has {counts.get(name)} partitions, expected "
            f"{expected_partitions(name, partitions)}; it was left as it is (repartitioning "
            "would move dossiers between partitions): recreate it empty, or configure its count",
            err=True,
        )
    if wrong:
        sys.exit(1)


@click.command()
@bootstrap_option
@click.option("--once", is_flag=True, help="Publish everything committed so far, then exit.")
@click.option("--status", "show_status", is_flag=True, help="Print position, acknowledged, lag.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between polls of the store once caught up.",
)
@click.option(
    "--page",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Events read, sent and acknowledged per step.",
)
@click.option("--topic", default=topics.EVENTS, show_default=True, help="Target topic.")
@click.option("--linger-ms", type=click.IntRange(min=0), default=20, show_default=True)
@click.option(
    "--client",
    type=click.Choice(["confluent", "kafka-python"]),
    default=None,
    help="Kafka client library (default: $DOSSIER_KAFKA_CLIENT or confluent, the faster).",
)
@click.option(
    "--digest-every",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Seconds between signed digests in follow mode (also at each day's close); 0: none.",
)
@click.option(
    "--digests",
    "digests_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the signed digests (default: DATA_DIR/digests).",
)
@data_dir_option
def relay(
    bootstrap: str | None,
    once: bool,
    show_status: bool,
    poll_interval: float,
    page: int,
    topic: str,
    linger_ms: int,
    client: str | None,
    digest_every: float,
    digests_dir: Path | None,
    settings: Settings,
) -> None:
    """Publish every committed event to dossier.events, at least once, in ledger order.

    The position Kafka acknowledged is kept in the store (cursor "relay"); a
    restart resumes from it. Consumers deduplicate by the ledger position.
    Without --once the relay follows the store until SIGTERM / Ctrl-C, and
    issues a signed digest of what was acknowledged every hour and at each
    day's close, to the digests folder and the dossier.digests topic (when a
    signing key exists: dossier keys init). The topic must exist with the
    configured partition count (dossier kafka init): the relay never creates it.

    Example: dossier relay --once ; dossier relay --status
    """
    from ledger.relay import CURSOR, Relay, log_page, relay_status

    ledger = open_ledger(settings)
    if show_status:
        echo_json(relay_status(ledger, CURSOR) | {"topic": topic})
        return
    from kafka.errors import KafkaError

    from ledger.kafka import KafkaConfigError, make_producer, require_project_topics

    address = kafka_bootstrap(bootstrap, settings)
    issuer_key = _signing_key(settings) if (digest_every and not once) else None
    needed = [topic] + ([topics.DIGESTS] if issuer_key else [])
    try:  # a missing or mispartitioned topic is a TopicError, said as it is
        require_project_topics(address, needed, settings)
        producer = make_producer(address, client or settings.kafka_client, linger_ms=linger_ms)
    except (KafkaError, KafkaConfigError) as e:
        raise click.ClickException(
            f"Kafka at {address} ({', '.join(needed)}): {type(e).__name__}: {e}"
        ) from None
    worker = Relay(ledger, producer, topic=topic, page=page)
    if issuer_key:
        from ledger.relay import DigestIssuer, DigestSchedule

        worker.on_acked = DigestIssuer(
            ledger,
            producer,
            digests_dir or settings.data_dir / "digests",
            issuer_key,
            DigestSchedule(digest_every),
        )
    stop = threading.Event()
    try:
        if once:
            report = worker.drain()
        else:
            stop_on_signals(stop)
            report = worker.follow(poll_interval, stop, on_page=log_page)
    finally:
        producer.close(timeout=10)
    echo_json(report.as_dict() | {"topic": topic, "client": producer.client})


def _signing_key(settings: Settings) -> Path | None:
    """The signing key if one exists; else a note on stderr and no digests."""
    from ledger.signing import key_path

    path = key_path(settings)
    if path.is_file():
        return path
    click.echo(
        f"note: no signing key at {path}: no signed digests will be issued "
        "(run `dossier keys init` to create one)",
        err=True,
    )
    return None


COMMANDS: list[click.Command] = [kafka, relay]
