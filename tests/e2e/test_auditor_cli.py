"""The auditor's commands end to end on a simulated province: history (with time travel),
control-sheet, workload, project and rebuild."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from ledger.bootstrap import open_ledger
from ledger.settings import Settings
from projections import audit_trail, control_sheet
from projections import state as dossier_state
from simulator import simulate

pytestmark = pytest.mark.e2e


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--data-dir", str(data)])


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two simulated days ingested into a data dir; the dossiers' stored events."""
    tmp = tmp_path_factory.mktemp("auditor")
    events = tmp / "e.jsonl"
    with events.open("w", encoding="utf-8") as out:
        simulate(2, 5, out, None)
    data = tmp / "data"
    assert run(data, "ingest", str(events)).exit_code == 0
    ledger = open_ledger(Settings.from_env(data))
    try:
        ids = sorted({r.envelope["dossier_id"] for r in ledger.iter_all()})
        stored = {did: ledger.events_of(did) for did in ids}
        rules = ledger.rules
    finally:
        ledger.close()
        ledger.keys.close()
    return {"data": data, "ids": ids, "events": stored, "rules": rules}


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pick=st.integers(0, 10**9), offset=st.floats(-0.2, 1.2), recorded=st.booleans())
def test_history_as_of_any_instant_equals_the_fold_up_to_it(
    province: dict[str, Any], pick: int, offset: float, recorded: bool
) -> None:
    did = province["ids"][pick % len(province["ids"])]
    events = province["events"][did]
    field = "recorded_at" if recorded else "occurred_at"
    times = [datetime.fromisoformat(r.envelope[field]) for r in events]
    first, last = min(times), max(times)
    instant = first + (last - first + timedelta(hours=1)) * offset
    args = ["history", did, "--as-of", instant.isoformat(), "--format", "json"]
    result = run(province["data"], *args, *(["--as-recorded"] if recorded else []))
    upto = [r for r, at in zip(events, times, strict=True) if at <= instant]
    if not upto:
        assert result.exit_code == 1 and "had no events by" in result.stderr
        return
    out = _json(result)
    expected = dossier_state.view(dossier_state.fold(upto), province["rules"], instant)
    assert out["state"] == json.loads(json.dumps(expected))
    assert [row["event_id"] for row in out["trail"]] == [r.envelope["event_id"] for r in upto]
    assert out["chain"]["verified"] is True
    assert out["as_of_time"] == ("recorded" if recorded else "business")


def test_history_table_shows_chain_and_one_row_per_event(province: dict[str, Any]) -> None:
    did = province["ids"][0]
    result = run(province["data"], "history", did)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"hash chain: verified ({len(province['events'][did])} events)"
    assert sum(1 for line in lines if line.split()[:1] and line.split()[0].isdigit()) == len(
        province["events"][did]
    )


def test_history_json_without_as_of_is_the_full_trail(province: dict[str, Any]) -> None:
    did = province["ids"][-1]
    out = _json(run(province["data"], "history", did, "--format", "json"))
    assert out["as_of"] is None
    assert out["trail"] == json.loads(
        json.dumps(audit_trail.rows(province["events"][did], province["rules"]))
    )


def test_unknown_dossier_is_a_clear_error(province: dict[str, Any]) -> None:
    for command in ("history", "control-sheet"):
        result = run(province["data"], command, "NO-SUCH-DOSSIER")
        assert result.exit_code == 1
        assert "unknown dossier 'NO-SUCH-DOSSIER'" in result.stderr
        assert "Traceback" not in result.output


def test_bad_as_of_names_the_option(province: dict[str, Any]) -> None:
    result = run(province["data"], "history", province["ids"][0], "--as-of", "last tuesday")
    assert result.exit_code == 2 and "--as-of" in result.stderr


def test_control_sheet_in_every_format(province: dict[str, Any]) -> None:
    did = max(province["ids"], key=lambda d: len(province["events"][d]))
    facts = dossier_state.fold(province["events"][did])
    expected = json.loads(json.dumps(control_sheet.rows(facts, province["rules"])))
    assert expected, "pick a dossier with hand-overs"
    out = _json(run(province["data"], "control-sheet", did, "--format", "json"))
    assert out["rows"] == expected and out["chain"]["verified"]
    assert out["header"]["dossier_id"] == did
    table = run(province["data"], "control-sheet", did)
    assert table.exit_code == 0 and "hash chain: verified" in table.stdout
    csv_out = run(province["data"], "control-sheet", did, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert [r["result"] for r in rows] == [
        {"early": "early", "on time": "on time", "late": "late", None: ""}[e["result"]]
        for e in expected
    ]
    assert "hash chain: verified" in csv_out.stderr
    html = run(province["data"], "control-sheet", did, "--format", "html")
    assert html.stdout.startswith("<!DOCTYPE html>") and did in html.stdout


def test_tampered_chain_is_shown_and_fails(tmp_path: Path, province: dict[str, Any]) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(province["data"], data)
    did = province["ids"][1]
    conn = sqlite3.connect(data / "ledger.sqlite3")
    (state,) = conn.execute(
        "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 1",
        [did],
    ).fetchone()
    obj = orjson.loads(state)
    obj["envelope"]["occurred_at"] = "2020-01-01T08:00:00+07:00"
    conn.execute(
        "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 1",
        [orjson.dumps(obj), did],
    )
    conn.commit()
    conn.close()
    for command in ("history", "control-sheet"):
        result = run(data, command, did)
        assert result.exit_code == 1
        assert "hash chain: FAILED" in result.stdout


def test_project_rebuild_and_workload(tmp_path: Path) -> None:
    from tests.projection_factories import province as random_province

    events = random_province(120, seed=9)  # some dossiers are still open at the end
    file = tmp_path / "e.jsonl"
    file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    data = tmp_path / "data"
    assert run(data, "ingest", str(file)).exit_code == 0
    projected = _json(run(data, "project", "--once", "--batch-size", "50"))
    assert projected["applied"] == len(events)
    again = _json(run(data, "project", "--once"))
    assert again["applied"] == 0 and again["position"] == projected["position"]
    stored = _json(run(data, "workload", "--format", "json"))["rows"]
    first = _json(run(data, "rebuild"))
    second = _json(run(data, "rebuild"))
    assert first["checksum"] == second["checksum"] and first["dossiers"] == 120
    assert _json(run(data, "workload", "--format", "json"))["rows"] == stored
    assert stored and all(r["open_held"] >= r["overdue_held"] >= 0 for r in stored)
    early = _json(run(data, "workload", "--format", "json", "--now", "2025-09-01"))["rows"]
    later = _json(run(data, "workload", "--format", "json", "--now", "2027-01-01"))["rows"]
    assert sum(r["open_held"] for r in later) == sum(r["open_held"] for r in stored)
    assert sum(r["overdue_held"] for r in early) == 0
    assert sum(r["overdue_held"] for r in later) > sum(r["overdue_held"] for r in early)
    table = run(data, "workload")
    assert table.exit_code == 0 and table.stdout.splitlines()[0].split() == [
        "official",
        "agency",
        "open_held",
        "overdue_held",
        "as_of",
    ]


def test_project_from_kafka_needs_a_bootstrap(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("DOSSIER_KAFKA_BOOTSTRAP", raising=False)
    result = run(tmp_path / "d", "project", "--source", "kafka", "--once")
    assert result.exit_code == 2 and "bootstrap" in result.stderr
