"""Readers while the loader runs, and a loader killed mid-way: two real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from analytics.snapshot import connect_reader, snapshot_path
from cli.main import main

DOSSIER = str(Path(sys.executable).with_name("dossier"))  # the console script of this venv

CONSISTENCY = """
SELECT (SELECT count(*) FROM events),
       (SELECT coalesce(sum(events), 0) FROM dossiers),
       (SELECT count(*) FROM dossiers),
       (SELECT count(DISTINCT dossier_id) FROM events),
       (SELECT coalesce(max(position), 0) FROM events),
       (SELECT coalesce(max(CAST(value AS BIGINT)), 0) FROM analytics_state WHERE key = 'position'),
       (SELECT count(*) FROM handovers),
       (SELECT count(*) FROM events WHERE type IN ('HandedOver', 'TransferredToAgency'))
"""


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("concurrency")
    data, events = tmp / "data", tmp / "e.jsonl"
    runner = CliRunner()
    sim = ["simulate", "--days", "3", "--seed", "5", "--start", "2025-09-28", "--out", str(events)]
    assert runner.invoke(main, sim).exit_code == 0
    result = runner.invoke(main, ["ingest", str(events), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    total = sum(1 for _ in events.open(encoding="utf-8"))
    return {"data": data, "total": total}


def _sink(data: Path, db: Path, page: int) -> subprocess.Popen[str]:
    cmd = [DOSSIER, "sink", "--source", "store", "--page", str(page)]
    cmd += ["--db", str(db), "--data-dir", str(data)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check(answer: tuple[int, ...]) -> None:
    events, folded, dossiers, distinct, last, state, handovers, handover_events = answer
    assert events == folded == last == state, answer  # every event folded exactly once
    assert dossiers == distinct, answer
    assert handovers == handover_events, answer


def test_a_second_process_queries_while_the_loader_runs(
    ingested: dict[str, Any], tmp_path: Path
) -> None:
    db = tmp_path / "analytics.duckdb"
    writer = _sink(ingested["data"], db, page=300)
    answers: list[tuple[int, ...]] = []
    cli_answers = []
    try:
        while writer.poll() is None:
            if not snapshot_path(db).exists():
                time.sleep(0.01)
                continue
            con, source = connect_reader(db)
            try:
                answers.append(con.execute(CONSISTENCY).fetchone())
            finally:
                con.close()
            assert source == snapshot_path(db)
            _check(answers[-1])
            if len(answers) % 20 == 1:  # the command itself, from a third process
                out = subprocess.run(
                    [DOSSIER, "query", CONSISTENCY, "--db", str(db)] + ["--format", "json"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert out.returncode == 0, out.stderr
                cli_answers.append(tuple(json.loads(out.stdout)[0].values()))
                _check(cli_answers[-1])
        stdout, stderr = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, stderr
    assert json.loads(stdout)["loaded"] == ingested["total"]
    seen = [a[0] for a in answers]
    assert seen == sorted(seen)  # snapshots only move forward
    assert len(set(seen)) >= 3, seen  # the reader saw the load in progress
    con, _ = connect_reader(db)
    final = con.execute(CONSISTENCY).fetchone()
    con.close()
    _check(final)
    assert final[0] == ingested["total"]  # at rest the snapshot is the last commit
    assert cli_answers


TABLES = {
    "events": "position",
    "dossiers": "dossier_id",
    "handovers": "dossier_id, seq",
    "dossier_period_ends": "dossier_id, month_end",
    "dossier_facts": "dossier_id",
}


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY {k}").fetchall() for t, k in TABLES.items()
        }
    finally:
        con.close()


def test_a_loader_killed_mid_way_resumes_with_nothing_lost_or_doubled(
    ingested: dict[str, Any], tmp_path: Path
) -> None:
    clean = tmp_path / "clean.duckdb"
    done = _sink(ingested["data"], clean, page=5000)
    assert done.wait(timeout=300) == 0

    db = tmp_path / "killed.duckdb"
    kills = 0
    for _ in range(2):
        writer = _sink(ingested["data"], db, page=300)
        target = ingested["total"] // 3 * (kills + 1)
        deadline = time.monotonic() + 120
        while writer.poll() is None and time.monotonic() < deadline:
            if snapshot_path(db).exists():
                con, _ = connect_reader(db)
                (n,) = con.execute("SELECT count(*) FROM events").fetchone()
                con.close()
                if n >= target:
                    os.kill(writer.pid, signal.SIGKILL)
                    writer.wait()
                    kills += 1
                    break
            time.sleep(0.02)
        else:
            writer.wait()
    assert kills >= 1, "the loader finished before it could be killed"
    resumed = _sink(ingested["data"], db, page=200)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert _dump(db) == _dump(clean)
