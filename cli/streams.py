"""``dossier process``, ``dossier worker``, ``dossier tick`` and ``dossier alerts``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cli.options import (
    bootstrap_option,
    data_dir_option,
    echo_json,
    instant_option,
    kafka_bootstrap,
    stop_on_signals,
)
from ledger.settings import Settings

streams_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Streams settings (TOML [streams]: lateness, grace, alert levels...; "
    "default: DATA_DIR/streams.toml if present).",
)


@click.command()
@click.option(
    "--follow",
    is_flag=True,
    help="Keep going: poll the log; the wall clock advances the watermark.",
)
@instant_option(
    "--now", "Judge open dossiers at this instant once caught up (ISO 8601, or a date: its end)."
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="--follow: seconds between polls.",
)
@click.option(
    "--deliver/--no-deliver",
    default=True,
    show_default=True,
    help="Deliver alerts to the subscriptions file's subscribers.",
)
@streams_config_option
@click.option(
    "--page",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Events per transaction.",
)
@click.option(
    "--subscriptions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Subscriptions (TOML; default: DATA_DIR/subscriptions.toml if present).",
)
@data_dir_option
def process(
    follow: bool,
    now: datetime | None,
    poll: float,
    deliver: bool,
    config_path: Path | None,
    page: int,
    subscriptions: Path | None,
    settings: Settings,
) -> None:
    """Run the stream processors in-process over the ledger: on-time metrics, deadline
    alerts and misconduct signals into DATA_DIR/analytics.duckdb (tables metrics_daily,
    alerts, signals), checkpointed with them in one transaction.

    Example: dossier process --now 2025-10-31
    """
    from cli import progress
    from streams.config import config_for
    from system.process import process as run

    stop = stop_on_signals()
    with progress.task("process", unit="positions", forced=settings.progress) as bar:
        summary = run(
            settings,
            now=now,
            follow=follow,
            stop=stop,
            poll=poll,
            progress=lambda done, total: bar.update(done, total=total),
            subscriptions=subscriptions,
            deliver=deliver,
            page=page,
            config=config_for(settings.data_dir, config_path),
        )
    echo_json(summary)


@click.command()
@bootstrap_option
@click.option(
    "--app-id", default="dossier-streams", show_default=True, help="Consumer group and app id."
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=None,
    help="Partitions of dossier.events (default: $DOSSIER_KAFKA_PARTITIONS or 12).",
)
@click.option(
    "--wall-clock",
    is_flag=True,
    help="Live mode: the wall clock advances the watermark (never in a replay).",
)
@click.option("--tick-interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True)
@streams_config_option
@data_dir_option
def worker(
    bootstrap: str | None,
    app_id: str,
    partitions: int | None,
    wall_clock: bool,
    tick_interval: float,
    config_path: Path | None,
    settings: Settings,
) -> None:
    """Run the stream processors as a faust worker on dossier.events (start any number
    in one consumer group: they split the partitions). Writes dossier.metrics,
    dossier.alerts and dossier.signals; bad records go to dossier.dlq.

    Example: dossier worker --bootstrap 127.0.0.1:9092
    """
    from ledger.bootstrap import open_rules
    from ledger.domain.catalog import load_catalog
    from streams.config import config_for
    from streams.faust_app import make_app

    bootstrap = kafka_bootstrap(bootstrap, settings)
    from ledger import topics
    from ledger.kafka import configured_partitions, require_topics

    partitions = partitions or configured_partitions(settings)
    # topics are created once, on purpose: never by a worker
    require_topics(
        bootstrap,
        [
            topics.EVENTS,
            topics.TICKS,
            topics.SIGNALS,
            topics.ALERTS,
            topics.METRICS,
            topics.DLQ,
        ],
        partitions,
    )
    app = make_app(
        bootstrap,
        open_rules(settings),
        app_id=app_id,
        partitions=partitions,
        wall_clock=wall_clock,
        tick_interval=tick_interval,
        catalog=load_catalog(),
        config=config_for(settings.data_dir, config_path),
    )
    import logging

    from faust.worker import Worker

    # faust and aiokafka log every record sent at DEBUG, and some logger below the
    # worker's level still had it enabled: a tenth of a busy worker's time went to
    # building records nobody reads. Warnings and errors still print.
    logging.disable(logging.INFO)
    Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


@click.command()
@bootstrap_option
@instant_option("--now", "The instant business time has reached.", required=True, dest="instant")
@data_dir_option
def tick(bootstrap: str | None, instant: datetime, settings: Settings) -> None:
    """Tell the stream workers that business time has reached an instant, on every
    partition (dossier.ticks): deadlines pass even where no event comes.

    Example: dossier tick --now 2025-10-31
    """
    from ledger.kafka import configured_partitions
    from streams.faust_app import publish_ticks

    bootstrap = kafka_bootstrap(bootstrap, settings)
    ticks = publish_ticks(bootstrap, instant, configured_partitions(settings))
    echo_json({"ticks": ticks, "watermark": instant.isoformat()})


@click.group()
def alerts() -> None:
    """Subscriptions and the alert feed."""


@alerts.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def alerts_check(file: Path) -> None:
    """Validate a subscriptions file; errors name the line.

    Example: dossier alerts check subscriptions.toml
    """
    from streams.subscriptions import load

    subscribers = load(file)
    echo_json({"file": str(file), "subscribers": [s.id for s in subscribers], "ok": True})


@alerts.command("tail")
@click.option("--follow", is_flag=True, help="Keep showing alerts as they fire.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--poll", type=click.FloatRange(min=0.05), default=1.0, show_default=True)
@data_dir_option
def alerts_tail(follow: bool, lines: int, poll: float, settings: Settings) -> None:
    """Show the latest alerts (one JSON object a line), and with --follow new ones as
    they fire. Reads the published snapshot of DATA_DIR/analytics.duckdb, so it never
    stands in the way of the runner.

    Example: dossier alerts tail --follow
    """
    from analytics.connection import database_path
    from analytics.feed import AlertFeed

    stop = stop_on_signals()
    feed = AlertFeed(database_path(settings))
    for row in feed.latest(lines):
        click.echo(row)
    while follow and not stop.is_set():
        stop.wait(poll)
        for row in feed.new():
            click.echo(row)


@alerts.command("deliver")
@bootstrap_option
@click.option(
    "--subscriptions",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Subscriptions (TOML; default: DATA_DIR/subscriptions.toml).",
)
@click.option("--group", default="dossier-alerts", show_default=True, help="Kafka consumer group.")
@click.option("--once", is_flag=True, help="Stop once idle and nothing is pending.")
@data_dir_option
def alerts_deliver(
    bootstrap: str | None, subscriptions: Path | None, group: str, once: bool, settings: Settings
) -> None:
    """Deliver the workers' alerts, signals and rate breaches from Kafka to the
    subscribers (webhook / Kafka topic), with an outbox in DATA_DIR/deliveries.duckdb;
    dead letters also go to dossier.dlq. The distributed counterpart of the delivery in
    dossier process.

    Example: dossier alerts deliver --subscriptions subscriptions.toml
    """
    from analytics.outbox import deliver_from_kafka
    from streams.subscriptions import load

    subscriptions = subscriptions or settings.data_dir / "subscriptions.toml"
    if not subscriptions.is_file():
        raise click.ClickException(
            f"{subscriptions}: no subscriptions file (see dossier alerts check)"
        )
    subscribers = load(subscriptions)

    bootstrap = kafka_bootstrap(bootstrap, settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop = stop_on_signals()
    echo_json(
        deliver_from_kafka(
            bootstrap,
            str(settings.data_dir / "deliveries.duckdb"),
            subscribers,
            group=group,
            once=once,
            should_stop=stop.is_set,
        )
    )


COMMANDS: list[click.Command] = [process, worker, tick, alerts]
