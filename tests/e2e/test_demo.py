"""``dossier demo`` and ``dossier run`` end to end, as a newcomer runs them: the printed next
commands work when pasted, and an interrupted run resumes without losing or duplicating."""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

DAYS = "2"
CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def dossier(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def state_of(data: Path) -> dict[str, Any]:
    """What must be equal after an uninterrupted and an interrupted-then-resumed demo."""
    import duckdb

    from analytics.snapshot import snapshot_path
    from ledger.settings import Settings
    from projections.store import open_store

    store = open_store(Settings.from_env(data))
    try:
        checksum = store.checksum()
    finally:
        store.close()
    con = duckdb.connect(str(snapshot_path(data / "analytics.duckdb")), read_only=True)
    try:
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("alerts", "signals", "metrics_daily", "events")
        }
        ids = con.execute("SELECT md5(string_agg(alert_id, ',' ORDER BY alert_id)) FROM alerts")
        counts["alert_ids"] = ids.fetchone()[0]
    finally:
        con.close()
    # Each run stamps its own appended_at (hashed into the chain): compare what was stored,
    # where, and that the digest covers all of it.
    from ledger.bootstrap import open_ledger

    ledger = open_ledger(Settings.from_env(data))
    stored = [(r.position, r.envelope["event_id"]) for r in ledger.iter_all()]
    if (data / "digest.json").exists():
        assert json.loads((data / "digest.json").read_text())["position"] == stored[-1][0]
    return {"read_models": checksum, "stored": hash(tuple(stored)), "n": len(stored), **counts}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    cwd = tmp_path_factory.mktemp("demo")
    done = dossier("demo", "--days", DAYS, "--data-dir", "data", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, state_of(cwd / "data"), done.stdout


def test_demo_prints_a_summary_whose_next_commands_work(reference) -> None:
    cwd, state, out = reference
    for label in (
        "events",
        "dossiers",
        "on time",
        "alerts",
        "signals",
        "digest",
        "DuckDB",
        "report",
    ):
        assert any(line.startswith(label) for line in out.splitlines()), (label, out)
    digest = json.loads((cwd / "data" / "digest.json").read_text())
    assert digest["root"] in out and state["events"] > 0 and state["alerts"] > 0
    assert Path(cwd / "data" / "report-2025.html").read_text().lstrip().startswith("<!DOCTYPE html")
    commands = out.split("Try next:")[1].strip().splitlines()
    assert [c.split()[1] for c in commands] == ["history", "query", "alerts", "serve"]
    for command in commands[:3]:
        argv = shlex.split(command)
        assert argv[0] == "dossier"
        result = dossier(*argv[1:], cwd=cwd)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
        assert result.stdout.strip(), command
    assert "hash chain: verified" in dossier(*shlex.split(commands[0])[1:], cwd=cwd).stdout


def test_demo_interrupted_at_a_random_moment_resumes(reference, tmp_path: Path) -> None:
    _, expected, _ = reference
    rng = random.Random()
    for _ in range(2):  # two interruptions at random moments, then a run to the end
        proc = subprocess.Popen(
            [*CLI, "demo", "--days", DAYS, "--data-dir", "data"],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 8.0))
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    done = dossier("demo", "--days", DAYS, "--data-dir", "data", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert state_of(tmp_path / "data") == expected


def _wait(predicate: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_run_ingests_the_inbox_and_stops_cleanly(reference, tmp_path: Path) -> None:
    cwd, _, _ = reference
    events = (cwd / "data" / "demo" / f"events-{DAYS}d-seed7.jsonl").read_bytes().splitlines()
    inbox = tmp_path / "inbox"
    keys = dossier("keys", "init", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    public_key = json.loads(keys.stdout)["public_key"]
    proc = subprocess.Popen(
        [*CLI, "run", "--inbox", str(inbox), "--poll", "0.2"],
        cwd=tmp_path,
        env={**_env(), "DOSSIER_DATA_DIR": str(tmp_path / "data")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(lambda: (inbox / "done").is_dir())
        half = len(events) // 2
        (inbox / ".a.part").write_bytes(b"\n".join(events[:half]) + b"\n")
        os.replace(inbox / ".a.part", inbox / "a.jsonl")
        (inbox / ".b.part").write_bytes(b"\n".join(events[half:]) + b"\n{not json\n")
        os.replace(inbox / ".b.part", inbox / "b.jsonl")
        _wait(lambda: (inbox / "done" / "a.jsonl").exists())
        _wait(lambda: (inbox / "rejected" / "b.jsonl").exists())
        reject = json.loads((inbox / "rejected" / "b.rejects.jsonl").read_text())
        assert reject["line"] == len(events) - half + 1 and "invalid JSON" in reject["reason"]
        _wait(lambda: _alerts(tmp_path / "data") > 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["stored"] == len(events) and stats["rejected_lines"] == 1
    assert stats["files_done"] == 1 and stats["files_rejected"] == 1
    # a signed digest on its schedule (the first round's), which verifies with the key
    digests = sorted((tmp_path / "data" / "digests").glob("*.json"))
    assert stats["digests"] >= 1 and len(digests) == stats["digests"]
    check = dossier(
        "verify",
        "--digest",
        str(digests[-1]),
        "--public-key",
        public_key,
        "--data-dir",
        str(tmp_path / "data"),
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _alerts(data: Path) -> int:
    import duckdb

    from analytics.snapshot import snapshot_path

    snap = snapshot_path(data / "analytics.duckdb")
    if not snap.exists():
        return 0
    try:
        con = duckdb.connect(str(snap), read_only=True)
    except duckdb.Error:
        return 0
    try:
        return con.execute("SELECT count(*) FROM alerts").fetchone()[0]
    except duckdb.Error:
        return 0
    finally:
        con.close()


def test_run_interrupted_at_a_random_moment_resumes(reference, tmp_path: Path) -> None:
    cwd, expected, _ = reference
    events = cwd / "data" / "demo" / f"events-{DAYS}d-seed7.jsonl"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "all.jsonl").write_bytes(events.read_bytes())
    env = {**_env(), "DOSSIER_DATA_DIR": str(tmp_path / "data")}
    argv = [*CLI, "run", "--inbox", str(inbox), "--poll", "0.2"]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(random.uniform(0.5, 6.0))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if b"watching" in err:  # signal handlers installed: a clean stop
        assert proc.returncode == 0, err[-3000:]
    log = tmp_path / "run.log"
    with log.open("wb") as err_file:
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err_file
        )
        try:
            _wait(lambda: b"watching" in log.read_bytes())
            _wait(lambda: (inbox / "done" / "all.jsonl").exists())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    assert proc.returncode == 0, log.read_text()[-3000:]
    # a last catch-up with nothing more to read (standard input at its end)
    last = subprocess.run(
        [*CLI, "run", "--inbox", "-"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert last.returncode == 0, last.stderr[-3000:]
    assert state_of(tmp_path / "data") == expected
