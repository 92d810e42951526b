"""``dossier kafka init`` and ``dossier relay``: the ledger's bridge to Kafka."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from ledger import topics
from ledger.cli import data_dir_option, echo_json, open_ledger
from ledger.config import Settings

bootstrap_option = click.option(
    "--bootstrap",
    default=None,
    metavar="HOST:PORT[,HOST:PORT]",
    help="Kafka bootstrap servers (default: $DOSSIER_KAFKA_BOOTSTRAP).",
)


def _bootstrap(given: str | None, settings: Settings | None = None) -> str:
    from ledger.kafka import KafkaConfigError, require_bootstrap

    try:
        return require_bootstrap(given or (settings or Settings.from_env()).kafka_bootstrap)
    except KafkaConfigError as e:
        raise click.UsageError(str(e)) from None


@click.group()
def kafka() -> None:
    """Kafka topics of the deployment."""


@kafka.command("init")
@bootstrap_option
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=topics.DEFAULT_PARTITIONS,
    show_default=True,
    help="Partitions of each new topic.",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Replicas of each new topic.",
)
def kafka_init(bootstrap: str | None, partitions: int, replication_factor: int) -> None:
    """Create the project's topics if missing (idempotent); print what was done as JSON.

    Example: dossier kafka init --bootstrap 127.0.0.1:9092 --partitions 12
    """
    from kafka.errors import KafkaError

    from ledger.kafka import ensure_topics

    try:
        result = ensure_topics(
            _bootstrap(bootstrap), partitions=partitions, replication_factor=replication_factor
        )
    except KafkaError as e:
        raise click.ClickException(f"Kafka at {bootstrap}: {type(e).__name__}: {e}") from None
    echo_json({"topics": result, "partitions": partitions})


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
@data_dir_option
def relay(
    bootstrap: str | None,
    once: bool,
    show_status: bool,
    poll_interval: float,
    page: int,
    topic: str,
    linger_ms: int,
    settings: Settings,
) -> None:
    """Publish every committed event to dossier.events, at least once, in ledger order.

    The position Kafka acknowledged is kept in the store (cursor "relay"); a
    restart resumes from it. Consumers deduplicate by the ledger position.
    Without --once the relay follows the store until SIGTERM / Ctrl-C.

    Example: dossier relay --once ; dossier relay --status
    """
    from ledger.relay import CURSOR, Relay, log_page, relay_status

    ledger = open_ledger(settings)
    if show_status:
        echo_json(relay_status(ledger, CURSOR) | {"topic": topic})
        return
    from kafka.errors import KafkaError

    from ledger.kafka import make_producer
    from ledger.relay import RelayError

    address = _bootstrap(bootstrap, settings)
    try:
        producer = make_producer(address, linger_ms=linger_ms)
    except KafkaError as e:
        raise click.ClickException(f"Kafka at {address}: {type(e).__name__}: {e}") from None
    worker = Relay(ledger, producer, topic=topic, page=page)
    stop = threading.Event()
    try:
        if once:
            report = worker.drain()
        else:
            _stop_on_signals(stop)
            report = worker.follow(poll_interval, stop, on_page=log_page)
    except RelayError as e:
        raise click.ClickException(str(e)) from None
    finally:
        producer.close(timeout=10)
    echo_json(report.as_dict() | {"topic": topic})


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


COMMANDS: list[click.Command] = [kafka, relay]
