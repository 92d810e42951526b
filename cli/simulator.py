"""``dossier simulate``: a province's dossiers as JSON Lines, with the labels of what was injected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.options import settings_for


@click.command()
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
    from cli import progress
    from simulator import Params
    from simulator import simulate as run

    kwargs: dict[str, Any] = {"start": start.date()} if start else {}
    if dossiers_per_day is not None:
        kwargs["params"] = Params(dossiers_per_day=dossiers_per_day)
    bar = kwargs["progress"] = progress.task(
        "simulate", total=days, unit="days", forced=settings_for(None).progress
    )
    # click.open_file: "-" is standard output, anything else a file opened for writing.
    with bar, click.open_file(str(out), "w", encoding="utf-8") as fout:
        if labels:
            with labels.open("w", encoding="utf-8") as flab:
                summary = run(days, seed, fout, flab, **kwargs)
        else:
            summary = run(days, seed, fout, None, **kwargs)
    click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True), err=True)


COMMANDS: list[click.Command] = [simulate]
