"""Auditor and read-model commands: history, control-sheet, workload, project, rebuild.

``history`` and ``control-sheet`` read the event store directly (the source
of truth) and say whether the dossier's hash chain verifies; ``workload``
reads the read models that ``project`` keeps up to date and ``rebuild``
recreates from the log.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from cli.options import (
    bootstrap_option,
    data_dir_option,
    echo_json,
    format_option,
    instant_option,
    kafka_bootstrap,
    open_ledger,
    stop_on_signals,
)
from cli.render import key_values, render
from ledger.settings import Settings


def _load(settings: Settings, dossier_id: str) -> tuple[Any, list[Any], dict[str, Any]]:
    """The ledger, the dossier's stored events and its chain verification."""
    from ledger.audit import verify

    ledger = open_ledger(settings)
    records = ledger.events_of(dossier_id)
    problems = verify(ledger, dossier_id)
    chain = {
        "verified": not problems,
        "events": len(records),
        "problems": [str(p) for p in problems],
    }
    return ledger, records, chain


def _chain_line(chain: dict[str, Any]) -> str:
    if chain["verified"]:
        return f"hash chain: verified ({chain['events']} events)"
    return f"hash chain: FAILED ({len(chain['problems'])} problem(s)): " + "; ".join(
        chain["problems"]
    )


@click.command("history")
@click.argument("dossier_id")
@instant_option(
    "--as-of", "Show the state as it stood at this instant (business time, occurred_at)."
)
@click.option(
    "--as-recorded",
    is_flag=True,
    help="With --as-of: take the events recorded by then (recorded_at) instead.",
)
@format_option("table", "json")
@data_dir_option
def history(
    dossier_id: str, as_of: datetime | None, as_recorded: bool, fmt: str, settings: Settings
) -> None:
    """A dossier's audit trail, or its state as it stood at an instant.

    Exit status 1 if the dossier is unknown or its hash chain does not verify.

    Example: dossier history 000.00.12.H41-250903-0007 --as-of 2025-09-05
    """
    from projections import audit_trail
    from projections import state as dossier_state

    if as_recorded and as_of is None:
        raise click.UsageError("--as-recorded needs --as-of INSTANT")
    ledger, records, chain = _load(settings, dossier_id)
    rules = ledger.rules
    now = as_of
    if now is not None:
        field = "recorded_at" if as_recorded else "occurred_at"
        records = [
            r
            for r in records
            if datetime.fromisoformat(r.envelope.get(field) or r.envelope["occurred_at"]) <= now
        ]
        if not records:
            raise click.ClickException(
                f"dossier {dossier_id!r} had no events by {now.isoformat()} ({field})"
            )
    facts = dossier_state.fold(records)
    current = dossier_state.view(facts, rules, now)
    trail = audit_trail.rows(records, rules)
    if fmt == "json":
        echo_json(
            {
                "dossier_id": dossier_id,
                "as_of": None if now is None else now.isoformat(),
                "as_of_time": None if now is None else ("recorded" if as_recorded else "business"),
                "chain": chain,
                "state": current,
                "trail": trail,
            }
        )
    else:
        click.echo(_chain_line(chain))
        if now is not None:
            click.echo(
                f"as of {now.isoformat()} ({'recorded' if as_recorded else 'business'} time)"
            )
            click.echo("")
            click.echo(key_values(current))
        click.echo("")
        click.echo(render(trail, audit_trail.COLUMNS, "table"))
    sys.exit(0 if chain["verified"] else 1)


@click.command("control-sheet")
@click.argument("dossier_id")
@format_option("table", "csv", "json", "html")
@data_dir_option
def control_sheet_command(dossier_id: str, fmt: str, settings: Settings) -> None:
    """The process control sheet (Form 05): one row per hand-over, with its result.

    Exit status 1 if the dossier is unknown or its hash chain does not verify.

    Example: dossier control-sheet 000.00.12.H41-250903-0007 --format html > form05.html
    """
    from projections import control_sheet
    from projections import state as dossier_state

    ledger, records, chain = _load(settings, dossier_id)
    facts = dossier_state.fold(records)
    header = {**control_sheet.header(facts, ledger.rules), "hash_chain": _chain_line(chain)}
    rows = control_sheet.rows(facts, ledger.rules)
    if fmt == "csv":
        click.echo(_chain_line(chain), err=True)
    if fmt == "json":
        echo_json({"header": header, "chain": chain, "rows": rows})
    else:
        title = f"Control sheet (Form 05) {dossier_id}"
        click.echo(render(rows, control_sheet.COLUMNS, fmt, title=title, header=header))
    sys.exit(0 if chain["verified"] else 1)


@click.command("workload")
@instant_option(
    "--now", "Classify overdue as of this instant (default: the latest event in the read models)."
)
@format_option("table", "csv", "json", "html")
@data_dir_option
def workload_command(now: datetime | None, fmt: str, settings: Settings) -> None:
    """Per official: open dossiers held and overdue held (from the read models).

    Example: dossier workload --now 2025-09-30
    """
    from ledger.bootstrap import open_rules
    from projections import workload
    from projections.store import open_store

    store = open_store(settings)
    try:
        if now is None:
            rows = store.select("rm_workload")
        else:
            rows = workload.rows(store.held(), open_rules(settings), now)
    finally:
        store.close()
    click.echo(render(rows, workload.COLUMNS, fmt, title="Workload per official"))


@click.command("project")
@click.option(
    "--source",
    type=click.Choice(["store", "kafka"]),
    default="store",
    show_default=True,
    help="The store's notification log, or the dossier.events topic.",
)
@click.option("--once", is_flag=True, help="Stop when caught up (Kafka: when idle).")
@bootstrap_option
@click.option("--group", default="dossier-projections", show_default=True, help="Consumer group.")
@click.option("--topic", default=None, help="Events topic (default dossier.events).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--poll-interval", type=float, default=1.0, show_default=True, help="Seconds between polls."
)
@click.option(
    "--idle-timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Kafka --once: stop after this many idle seconds.",
)
@data_dir_option
def project(
    source: str,
    once: bool,
    bootstrap: str | None,
    group: str,
    topic: str | None,
    batch_size: int,
    poll_interval: float,
    idle_timeout: float,
    settings: Settings,
) -> None:
    """Keep the read models up to date from the log or Kafka, with checkpoints.

    Examples: dossier project --once ;
    dossier project --source kafka --bootstrap 127.0.0.1:9092 --group projections
    """
    from ledger.bootstrap import open_rules
    from ledger.topics import EVENTS
    from projections.runner import STORE_TRACKING, Projector, run_store
    from projections.store import open_store
    from streams.config import config_for

    stop = stop_on_signals()
    store = open_store(settings, config_for(settings.data_dir).lateness)
    try:
        if source == "kafka":
            from projections.kafka_runner import run_kafka

            servers = kafka_bootstrap(bootstrap, settings)
            projector = Projector(store, open_rules(settings))
            report = run_kafka(
                projector,
                bootstrap=servers,
                group=group,
                settings=settings,
                topic=topic or EVENTS,
                once=once,
                idle_timeout=idle_timeout,
                batch_size=batch_size,
                should_stop=stop.is_set,
            )
        else:
            from cli import progress

            ledger = open_ledger(settings)
            projector = Projector(store, ledger.rules)
            with progress.task("project", unit="positions", forced=settings.progress) as bar:
                applied = run_store(
                    progress.reading(ledger, bar),
                    projector,
                    batch_size=batch_size,
                    once=once,
                    poll_interval=poll_interval,
                    should_stop=stop.is_set,
                )
            report = {
                "source": "store",
                "applied": applied,
                "position": store.position(STORE_TRACKING),
            }
    finally:
        store.close()
    echo_json(report)


@click.command("rebuild")
@data_dir_option
def rebuild_command(settings: Settings) -> None:
    """Drop every read model and rebuild it from the whole log.

    Example: dossier rebuild
    """
    from cli import progress
    from projections.runner import Projector, rebuild
    from projections.store import open_store
    from streams.config import config_for

    ledger = open_ledger(settings)
    store = open_store(settings, config_for(settings.data_dir).lateness)
    try:
        with progress.task("rebuild read models", unit="events", forced=settings.progress) as bar:
            report = rebuild(ledger, Projector(store, ledger.rules))
            bar.update(report.events, total=report.events)
        echo_json({**report.as_dict(), "checksum": store.checksum()})
    finally:
        store.close()


COMMANDS: list[click.Command] = [
    history,
    control_sheet_command,
    workload_command,
    project,
    rebuild_command,
]
