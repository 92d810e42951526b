"""``dossier process``, ``dossier worker``, ``dossier tick`` and ``dossier alerts``."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ledger.cli import data_dir_option, echo_json
from ledger.config import Settings
from projections.cli import parse_instant_option


def _instant(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    return None if value is None else parse_instant_option(value, param=f"--{param.name}")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stop


@click.command()
@click.option(
    "--follow",
    is_flag=True,
    help="Keep going: poll the log; the wall clock advances the watermark.",
)
@click.option(
    "--now",
    callback=_instant,
    default=None,
    help="Judge open dossiers at this instant once caught up (ISO 8601, or a date: its end).",
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
@click.option(
    "--subscriptions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Subscriptions (TOML; default: DATA_DIR/subscriptions.toml if present).",
)
@click.option("--replayed", is_flag=True, help="Also deliver alerts marked replayed.")
@data_dir_option
def process(
    follow: bool,
    now: datetime | None,
    poll: float,
    deliver: bool,
    subscriptions: Path | None,
    replayed: bool,
    settings: Settings,
) -> None:
    """Run the stream processors in-process over the ledger: on-time metrics, deadline
    alerts and misconduct signals into DATA_DIR/analytics.duckdb (tables metrics_daily,
    alerts, signals), checkpointed with them in one transaction.

    Example: dossier process --now 2025-10-31
    """
    from ledger import progress
    from streams.embedded import process as run

    stop = _stop_on_signals()
    with progress.task("process", unit="positions") as bar:
        summary = run(
            settings,
            now=now,
            follow=follow,
            stop=stop,
            poll=poll,
            progress=lambda done, total: bar.update(done, total=total),
        )
    echo_json(summary)


COMMANDS: list[click.Command] = [process]


def main() -> None:  # pragma: no cover
    sys.exit(process())
