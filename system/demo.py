"""``dossier demo``: the whole system on the embedded default, in one command.

Stages, each resumable (an interrupted demo started again picks up where it stopped,
nothing lost or duplicated):

1. ``simulate``: a province as JSON Lines in ``DATA_DIR/demo/`` (written to a
   temporary name and renamed: a half-written file is never reused);
2. ``ingest``: into the SQLite ledger (idempotent by ``event_id``);
3. ``verify``: every hash chain and the ledger's positions;
4. ``project``: the read models rebuilt from the log (one transaction);
5. ``process``: the stream processors in-process (``system.process``:
   alerts, signals, on-time metrics and the analysts' tables in
   ``analytics.duckdb``, checkpointed per page);
6. ``report``: the HTML report (``analytics.report.write_report``), and a Merkle
   digest of the log (``digest.json``).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from analytics.connection import database_path
from analytics.reader import Analytics
from analytics.report import write_report
from analytics.snapshot import publish
from ledger.audit import issue_digest, verify
from ledger.bootstrap import open_ledger
from ledger.ingest import ingest_lines
from ledger.settings import Settings
from projections.runner import Projector, rebuild
from projections.store import open_store
from simulator import simulate
from streams.config import config_for
from system.process import process

STAGES = ("simulate", "ingest", "verify", "project", "process", "report")
DEFAULT_START = date(2025, 9, 1)


class DemoFailed(RuntimeError):
    """A stage found something wrong (e.g. a chain that does not verify)."""


class Bar(Protocol):
    """How far a stage has come (the command line draws it; see ``cli.progress``)."""

    def update(self, completed: float, *, total: float | None = None) -> None: ...

    def advance(self, n: float = 1) -> None: ...


Tasks = Callable[..., AbstractContextManager[Bar]]
"""``tasks(label, total, unit=...)``: a context manager giving a stage's :class:`Bar`."""


class _Quiet:
    """A bar nobody sees: the default when the caller draws none."""

    def update(self, completed: float, *, total: float | None = None) -> None:
        pass

    def advance(self, n: float = 1) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def quiet(label: str, total: float | None = None, *, unit: str = "") -> _Quiet:
    return _Quiet()


def events_file(settings: Settings, days: int, seed: int) -> Path:
    return settings.data_dir / "demo" / f"events-{days}d-seed{seed}.jsonl"


def simulate_stage(
    settings: Settings, days: int, seed: int, tasks: Tasks = quiet
) -> tuple[Path, dict[str, Any]]:
    """The simulated province's events file (made once per ``days``/``seed``)."""

    out = events_file(settings, days, seed)
    labels = out.with_name(out.name.replace("events-", "labels-"))
    if out.exists() and labels.exists():
        return out, {"reused": str(out)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, tmp_labels = out.with_suffix(".tmp"), labels.with_suffix(".tmp")
    with tasks(f"simulate {days} days", unit="") as bar:
        with tmp.open("w", encoding="utf-8") as fout, tmp_labels.open("w", encoding="utf-8") as fl:
            summary = simulate(days, seed, fout, fl, start=DEFAULT_START)
        bar.update(1, total=1)
    os.replace(tmp_labels, labels)
    os.replace(tmp, out)  # last: its presence means both files are whole
    return out, summary


def ingest_stage(settings: Settings, path: Path, tasks: Tasks = quiet) -> dict[str, Any]:

    ledger = open_ledger(settings)
    with (
        path.open("rb") as stream,
        tasks("ingest", path.stat().st_size, unit="bytes") as bar,
    ):
        report = ingest_lines(ledger, stream, source=str(path), progress=bar.advance)
    if report.errors:
        first = report.errors[0]
        raise DemoFailed(f"{report.rejected} simulated line(s) rejected, e.g. {first}")
    return report.as_dict()


def verify_stage(settings: Settings, tasks: Tasks = quiet) -> dict[str, Any]:

    ledger = open_ledger(settings)
    with tasks("verify hash chains", unit="") as bar:
        problems = verify(ledger)
        bar.update(1, total=1)
    if problems:
        raise DemoFailed(
            f"{len(problems)} problem(s) in the ledger, e.g. {problems[0]} (dossier verify --all)"
        )
    return {"problems": 0, **ledger.status()}


def project_stage(settings: Settings, tasks: Tasks = quiet) -> dict[str, Any]:

    ledger = open_ledger(settings)
    store = open_store(settings, config_for(settings.data_dir).lateness)
    try:
        with tasks("read models", unit="events") as bar:
            report = rebuild(ledger, Projector(store, ledger.rules))
            bar.update(report.events, total=report.events)
        return report.as_dict()
    finally:
        store.close()


def process_stage(settings: Settings, tasks: Tasks = quiet) -> dict[str, Any]:

    with tasks("stream processors", unit="events") as bar:
        summary = process(settings, progress=lambda pos, total: bar.update(pos, total=total))
    publish_analytics(settings)
    return summary


def publish_analytics(settings: Settings) -> None:
    """Publish the analysts' database now: ``process`` paces its publications, and the
    report and every reader (query, alerts tail, serve) read the published copy."""

    path = database_path(settings)
    if path.exists():
        publish(path, force=True)


def report_stage(settings: Settings, period: str) -> tuple[Path, dict[str, Any]]:

    out = write_report(settings, period, "html", settings.data_dir / f"report-{period}.html")
    digest = issue_digest(open_ledger(settings))
    tmp = settings.data_dir / "digest.json.tmp"
    tmp.write_text(json.dumps(digest, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, settings.data_dir / "digest.json")
    return out, digest


def on_time(settings: Settings) -> dict[str, Any]:
    """Resolved dossiers by on-time class, from the read models (``projections.state``)."""
    import sqlite3

    store = open_store(settings)
    try:
        with store.transaction() as c:
            c.execute(
                "SELECT on_time, COUNT(*) FROM rm_dossiers WHERE ended_at IS NOT NULL "
                "AND result IS NOT NULL GROUP BY on_time"
            )
            counts = {k: int(n) for k, n in c.fetchall() if k}
            c.execute("SELECT COUNT(*) FROM rm_dossiers")
            (dossiers,) = c.fetchone()
    except sqlite3.Error:
        counts, dossiers = {}, 0
    finally:
        store.close()
    good = counts.get("EARLY", 0) + counts.get("ON_TIME", 0)
    judged = good + counts.get("LATE", 0)
    return {
        "dossiers": int(dossiers),
        "resolved": judged,
        "by_class": counts,
        "on_time_rate": round(good / judged, 4) if judged else None,
    }


def example_dossier(settings: Settings) -> str | None:
    """A dossier worth looking at: one with a deadline alert at its due, else any."""

    db = Analytics(database_path(settings))
    try:
        rows = db.rows(
            "SELECT dossier_id FROM alerts WHERE kind = 'deadline' AND level = 'due' "
            "AND dossier_id IS NOT NULL ORDER BY dossier_id LIMIT 1",
            (),
            needs="alerts",
        )
    except Exception:  # noqa: BLE001 - only a suggestion
        rows = []
    if rows:
        return rows[0]["dossier_id"]

    store = open_store(settings)
    try:
        with store.transaction() as c:
            c.execute("SELECT MIN(dossier_id) FROM rm_dossiers")
            (first,) = c.fetchone()
        return first
    finally:
        store.close()


def next_commands(settings: Settings, dossier_id: str | None, period: str) -> list[str]:
    """Commands to try next, ready to paste (with ``--data-dir`` unless it is the default)."""
    default = settings.default_data_dir
    where = [] if settings.data_dir == default else ["--data-dir", str(settings.data_dir)]
    q = shlex.join
    sql = (
        "SELECT month, sum(resolved) AS resolved, sum(late) AS late, "
        "round(sum(early + on_time) / sum(resolved), 4) AS on_time_rate "
        "FROM on_time_by_agency_month GROUP BY month ORDER BY month"
    )
    out = []
    if dossier_id:
        out.append(q(["dossier", "history", dossier_id, *where]))
    out.append(q(["dossier", "query", sql, *where]))
    out.append(q(["dossier", "alerts", "tail", "-n", "5", *where]))
    out.append(q(["dossier", "serve", *where]))
    return out


def run_demo(
    settings: Settings,
    days: int = 90,
    seed: int = 7,
    *,
    echo: Callable[[str], None] = print,
    tasks: Tasks = quiet,
) -> dict[str, Any]:
    """Every stage in order; returns the summary (with the seconds of each stage).

    ``tasks`` draws each stage's progress (the command line passes ``cli.progress.task``)."""
    timings: dict[str, float] = {}
    result: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        echo(f"[{len(timings) + 1}/{len(STAGES)}] {name}")
        t = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - t, 3)
        return value

    path, sim = stage("simulate", lambda: simulate_stage(settings, days, seed, tasks))
    result["ingest"] = stage("ingest", lambda: ingest_stage(settings, path, tasks))
    result["verify"] = stage("verify", lambda: verify_stage(settings, tasks))
    result["project"] = stage("project", lambda: project_stage(settings, tasks))
    result["process"] = stage("process", lambda: process_stage(settings, tasks))
    period = str(DEFAULT_START.year)
    report, digest = stage("report", lambda: report_stage(settings, period))
    rates = on_time(settings)
    processed = result["process"]
    return {
        "data_dir": str(settings.data_dir),
        "events": result["verify"]["events"],
        "dossiers": result["verify"]["dossiers"],
        "on_time": rates,
        "alerts_by_level": processed.get("alerts_by_level", {}),
        "alerts_by_kind": processed.get("alerts_by_kind", {}),
        "signals_by_kind": processed.get("signals_by_kind", {}),
        "digest": digest,
        "duckdb": str(database_path(settings)),
        "report": str(report),
        "events_file": str(path),
        "simulated": {k: sim[k] for k in ("dossiers", "events") if k in sim},
        "next": next_commands(settings, example_dossier(settings), period),
        "seconds": timings,
        "total_seconds": round(sum(timings.values()), 3),
    }


def summary_text(s: dict[str, Any]) -> str:
    """The summary a person reads at the end of the demo."""

    def counts(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in d.items()) or "none"

    rate = s["on_time"]["on_time_rate"]
    lines = [
        "",
        f"events      {s['events']:,}",
        f"dossiers    {s['dossiers']:,}",
        "on time     "
        + ("n/a" if rate is None else f"{rate:.1%} of {s['on_time']['resolved']:,} resolved"),
        f"alerts      {counts(s['alerts_by_level'])}"
        + (f"; {counts(s['alerts_by_kind'])}" if s["alerts_by_kind"] else ""),
        f"signals     {counts(s['signals_by_kind'])}",
        f"digest      {s['digest'].get('root')} (position {s['digest'].get('position')})",
        f"DuckDB      {s['duckdb']}",
        f"report      {s['report']}",
        f"took        {s['total_seconds']:.1f} s ("
        + ", ".join(f"{k} {v:.1f}" for k, v in s["seconds"].items())
        + ")",
        "",
        "Try next:",
        *(f"  {c}" for c in s["next"]),
    ]
    return "\n".join(lines)
