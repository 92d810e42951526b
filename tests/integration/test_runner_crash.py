"""Crash-restart: ``dossier project`` killed with SIGKILL at random moments, then run to the end.

The read models it leaves must equal those of an uninterrupted rebuild: each
batch commits its rows with its tracking position, so a kill loses at most the
batch in flight, which the next run reads again.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.bootstrap import open_ledger
from ledger.settings import Settings
from projections.runner import STORE_TRACKING, Projector, rebuild
from projections.store import SQLiteReadModels
from tests.projection_factories import province

pytestmark = pytest.mark.integration


def project(data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dossier")),
            "project",
            "--once",
            "--batch-size",
            "3",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "DOSSIER_STORE": ""},
    )


def tracked(path: Path) -> int:
    """The runner's committed position, read from outside (0 before it exists)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute(
            "SELECT position FROM rm_tracking WHERE name = ?", [STORE_TRACKING]
        ).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()
    return int(row[0]) if row else 0


def test_sigkill_at_random_moments_then_finish_equals_a_rebuild(tmp_path: Path) -> None:
    data = tmp_path / "data"
    led = open_ledger(Settings.from_env(data))
    try:
        assert not led.append_batch(province(400, seed=31)).rejected
        total = led.max_position()
        expected_store = SQLiteReadModels(tmp_path / "expected.sqlite3")
        rebuild(led, Projector(expected_store, led.rules))
        expected = expected_store.checksum()
        expected_store.close()
    finally:
        led.close()
        led.keys.close()

    rng = random.Random(7)
    rm_path = data / "readmodels.sqlite3"
    position = 0
    kills = 0
    while kills < 5 and position < total:
        target = position + rng.randint(1, max(1, (total - position) // 3))
        proc = project(data)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            position = tracked(rm_path)
            if position >= target:
                proc.send_signal(signal.SIGKILL)  # at a random moment past the target
                kills += 1
                break
            time.sleep(rng.uniform(0.0, 0.01))
        proc.communicate(timeout=30)
        position = tracked(rm_path)
    assert kills >= 3, (kills, position, total)  # killed mid-run, more than once
    final = project(data)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    store = SQLiteReadModels(data / "readmodels.sqlite3")
    try:
        assert store.position(STORE_TRACKING) == total
        assert store.checksum() == expected
    finally:
        store.close()
