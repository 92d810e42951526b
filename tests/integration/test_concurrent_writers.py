"""Four ``dossier ingest`` processes write overlapping files into one PostgreSQL store at once.

Optimistic-concurrency conflicts must be retried, never surfaced: nothing lost,
nothing duplicated, every chain verifying; the relay then publishes the result
in ledger order per dossier.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from ledger.audit import verify
from ledger.bootstrap import open_ledger
from ledger.kafka import ensure_topics
from ledger.settings import Settings
from simulator.factories import event_stream, write_jsonl
from system.harness.crash import dossier_executable
from system.harness.topic import dedupe, ledger_positions, read_topic

pytestmark = pytest.mark.integration

WRITERS = 4


def _overlapping_files(tmp_path: Path, events: list[dict]) -> list[Path]:
    """Writer k gets every dossier whose index mod 4 is k or k+1 (each dossier in two
    files) plus the first tenth of dossiers (in all four), each file in stream order."""
    order = {d: i for i, d in enumerate(dict.fromkeys(e["dossier_id"] for e in events))}
    shared = len(order) // 10
    files = []
    for k in range(WRITERS):
        mine = [
            e
            for e in events
            if order[e["dossier_id"]] < shared
            or order[e["dossier_id"]] % WRITERS in (k, (k + 1) % WRITERS)
        ]
        files.append(write_jsonl(tmp_path / f"writer{k}.jsonl", mine))
    return files


def test_four_concurrent_ingests_lose_nothing_and_duplicate_nothing(
    pg_url: str, fresh_kafka: str, tmp_path: Path
):
    events = event_stream(500, seed=31)
    files = _overlapping_files(tmp_path, events)
    env = {**os.environ, "DOSSIER_STORE": pg_url, "DOSSIER_DATA_DIR": str(tmp_path / "data")}
    open_ledger(Settings.from_env(tmp_path / "data", store=pg_url))  # tables exist before the race

    procs = [
        subprocess.Popen(
            [dossier_executable(), "ingest", str(f), "--format", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    outputs = [p.communicate(timeout=240) for p in procs]

    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    reports = [orjson.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["rejected"] for r in reports) == 0
    assert sum(r["stored"] for r in reports) == len(events)
    lines = sum(r["read"] for r in reports)
    assert sum(r["duplicates"] for r in reports) == lines - len(events)

    ledger = open_ledger(Settings.from_env(tmp_path / "data", store=pg_url))
    assert ledger.status()["events"] == len(events)
    assert {r[0] for r in ledger.index_rows()} == {e["event_id"] for e in events}
    assert verify(ledger) == []
    for did, stored in ledger_positions(ledger).items():
        got = [r.envelope["event_id"] for r in ledger.events_of(did)]
        want = [e["event_id"] for e in events if e["dossier_id"] == did]
        assert got == want, did
        assert stored == sorted(stored)

    ensure_topics(fresh_kafka)
    relay = subprocess.run(
        [dossier_executable(), "relay", "--once", "--bootstrap", fresh_kafka],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert relay.returncode == 0, relay.stderr
    records = read_topic(fresh_kafka, "dossier.events", len(events), deadline=30)
    assert len(records) == len(events)
    assert dedupe(records) == (ledger_positions(ledger), 0)
