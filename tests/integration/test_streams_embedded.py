"""The embedded runner: idempotent, crash-safe, and of one mind with the projections."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from ledger.bootstrap import open_ledger
from ledger.settings import Settings
from projections.runner import Projector, rebuild
from projections.store import SQLiteReadModels
from system.process import process
from tests.streams_data import simulated_ledger

pytestmark = pytest.mark.integration

NOW = datetime(2025, 10, 31, 17, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def tables(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "signals": con.execute("SELECT * FROM signals ORDER BY signal_id").fetchall(),
            "alerts": con.execute("SELECT * FROM alerts ORDER BY alert_id").fetchall(),
            "metrics_daily": con.execute(
                'SELECT * FROM metrics_daily ORDER BY "day", "window", scope, "key"'
            ).fetchall(),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("province") / "data"
    simulated_ledger(Settings.from_env(data), days=6, seed=8)
    return data


def copy_ledger(src: Path, dst: Path) -> Settings:
    dst.mkdir(parents=True)
    for name in ("ledger.sqlite3", "keys.sqlite3"):
        shutil.copy(src / name, dst / name)
    return Settings.from_env(dst)


def test_a_second_run_adds_nothing(province: Path, tmp_path: Path) -> None:
    settings = copy_ledger(province, tmp_path / "d")
    first = process(settings, now=NOW)
    before = tables(settings.data_dir / "analytics.duckdb")
    second = process(settings, now=NOW)
    assert second["events"] == 0 and first["events"] > 0
    assert tables(settings.data_dir / "analytics.duckdb") == before
    assert before["signals"] and before["alerts"] and before["metrics_daily"]


def test_killed_mid_run_then_restarted_gives_the_same_tables(
    province: Path, tmp_path: Path
) -> None:
    clean = copy_ledger(province, tmp_path / "clean")
    process(clean, now=NOW, page=400)
    expected = tables(clean.data_dir / "analytics.duckdb")

    crashed = copy_ledger(province, tmp_path / "crashed")
    rng = random.Random(3)
    for _ in range(2):
        proc = subprocess.Popen(
            [
                *CLI,
                "process",
                "--page",
                "400",
                "--now",
                NOW.isoformat(),
                "--data-dir",
                str(crashed.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    process(crashed, now=NOW, page=400)
    assert tables(crashed.data_dir / "analytics.duckdb") == expected


def test_resolved_classes_equal_the_projections(province: Path, tmp_path: Path) -> None:
    settings = copy_ledger(province, tmp_path / "d")
    process(settings, now=NOW)
    led = open_ledger(settings)
    store = SQLiteReadModels(tmp_path / "rm.sqlite3")
    try:
        rebuild(led, Projector(store, led.rules))
        tz = ZoneInfo("Asia/Ho_Chi_Minh")
        projected: Counter[tuple[str, str, str]] = Counter()
        for row in store.select("rm_dossiers"):
            if row["ended_at"] is not None:
                day = datetime.fromisoformat(row["ended_at"]).astimezone(tz).date().isoformat()
                projected[(row["agency"], day, row["on_time"])] += 1
    finally:
        led.close()
        led.keys.close()
        store.close()
    con = duckdb.connect(str(settings.data_dir / "analytics.duckdb"), read_only=True)
    streamed: Counter[tuple[str, str, str]] = Counter()
    for agency, day, early, on_time, late in con.execute(
        'SELECT "key", CAST("day" AS VARCHAR), resolved_early, resolved_on_time, resolved_late '
        "FROM metrics_daily WHERE scope = 'agency' AND \"window\" = 'day'"
    ).fetchall():
        for cls, n in (("EARLY", early), ("ON_TIME", on_time), ("LATE", late)):
            if n:
                streamed[(agency, day, cls)] += n
    assert sum(projected.values()) > 100
    assert streamed == projected
