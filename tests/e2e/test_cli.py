"""The ``dossier`` core commands end to end: CliRunner for each, and the real console script."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from cli.main import main
from simulator.factories import event_stream, write_jsonl

pytestmark = pytest.mark.e2e


def run(data: Path, *args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--data-dir", str(data)], input=input)


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return event_stream(6, seed=2)


@pytest.fixture
def loaded(tmp_path: Path, events: list[dict[str, Any]]) -> Path:
    """A data dir holding ``events``."""
    data = tmp_path / "data"
    result = run(data, "ingest", str(write_jsonl(tmp_path / "e.jsonl", events)))
    assert result.exit_code == 0, result.output
    return data


def test_ingest_then_again_adds_nothing(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    file = write_jsonl(tmp_path / "e.jsonl", events)
    first = run(tmp_path / "d", "ingest", str(file), "--format", "json")
    assert first.exit_code == 0
    assert json.loads(first.stdout)["stored"] == len(events)
    again = run(tmp_path / "d", "ingest", str(file))
    assert again.exit_code == 0
    assert f"stored 0, {len(events)} already present, 0 rejected" in again.stdout


def test_ingest_reports_bad_lines_and_keeps_good_ones(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    first = events[0]
    lines = [orjson.dumps(first).decode(), "garbage{"]
    lines.append(
        orjson.dumps(
            {k: v for k, v in first.items() if k != "data"} | {"event_id": str(uuid.uuid4())}
        ).decode()
    )
    lines.append(orjson.dumps(first | {"type": "Bribed", "event_id": str(uuid.uuid4())}).decode())
    lines.append(orjson.dumps(first | {"event_id": str(uuid.uuid4())}).decode())  # 2nd receipt
    file = tmp_path / "mixed.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(tmp_path / "d", "ingest", str(file))
    assert result.exit_code == 1
    err = result.stderr.splitlines()
    assert err[0].startswith(f"{file}:2: invalid JSON")
    assert err[1] == f"{file}:3: data: missing"
    assert err[2].startswith(f"{file}:4: type: unknown event type 'Bribed'")
    assert err[3].startswith(f"{file}:5: dossier {first['dossier_id']}: event ")
    assert "duplicate_receipt" in err[3]
    rejects = [json.loads(x) for x in Path(f"{file}.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 3, 4, 5] and rejects[0]["raw"] == "garbage{"
    status = run(tmp_path / "d", "status", "--format", "json")
    assert json.loads(status.stdout)["events"] == 1


def test_ingest_from_stdin_with_bom_and_crlf(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    body = b"\xef\xbb\xbf" + b"\r\n".join(orjson.dumps(e) for e in events) + b"\r\n\r\n"
    result = run(tmp_path / "d", "ingest", "-", input=body)
    assert result.exit_code == 0, result.output
    assert f"{len(events)} read, stored {len(events)}" in result.stdout


def test_ingest_stdin_rejects_go_to_the_data_dir(tmp_path: Path) -> None:
    result = run(tmp_path / "d", "ingest", "-", input=b"[1]\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("-:1: envelope: must be a JSON object")
    assert (tmp_path / "d" / "rejects.jsonl").is_file()


def test_ingest_dry_run_writes_nothing(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    file = write_jsonl(tmp_path / "e.jsonl", events)
    result = run(tmp_path / "d", "ingest", "--dry-run", str(file), "--format", "json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True and summary["stored"] == len(events)
    status = run(tmp_path / "d", "status", "--format", "json")
    assert json.loads(status.stdout)["events"] == 0


def test_ingest_empty_file_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = run(tmp_path / "d", "ingest", str(empty))
    assert result.exit_code == 0 and "0 read" in result.stdout
    missing = run(tmp_path / "d", "ingest", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_status(loaded: Path, events: list[dict[str, Any]]) -> None:
    as_json = json.loads(run(loaded, "status", "--format", "json").stdout)
    assert as_json == {"events": len(events), "dossiers": 6, "position": len(events)}
    table = run(loaded, "status").stdout.split()
    assert table == ["events", str(len(events)), "dossiers", "6", "position", str(len(events))]


def test_verify_all_one_and_unknown(loaded: Path, events: list[dict[str, Any]]) -> None:
    ok = run(loaded, "verify", "--all")
    assert ok.exit_code == 0 and ok.stdout.rstrip().endswith(": OK")
    one = run(loaded, "verify", events[0]["dossier_id"], "--format", "json")
    assert one.exit_code == 0 and json.loads(one.stdout)["ok"] is True
    unknown = run(loaded, "verify", "D-none")
    assert unknown.exit_code == 1 and "unknown dossier 'D-none'" in unknown.output
    assert run(loaded, "verify").exit_code == 2


def test_verify_names_a_tampered_event(loaded: Path, events: list[dict[str, Any]]) -> None:
    victim = events[3]
    with sqlite3.connect(loaded / "ledger.sqlite3") as conn:
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE instr(state, ?) > 0",
            (victim["event_id"].encode(),),
        ).fetchone()
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE state = ?",
            (bytes(state).replace(b'"occurred_at":"2025', b'"occurred_at":"2024'), state),
        )
    result = run(loaded, "verify", "--all", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert any(p.startswith("ALTERED") and victim["event_id"] in p for p in report["problems"])


def test_digest_and_verify_digest(loaded: Path, tmp_path: Path, events: list[Any]) -> None:
    out = tmp_path / "digest.json"
    result = run(loaded, "digest", "--out", str(out))
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed["position"] == len(events) and len(printed["root"]) == 64
    assert json.loads(out.read_text()) == printed
    assert run(loaded, "verify", "--digest", str(out)).exit_code == 0
    earlier = json.loads(run(loaded, "digest", "--position", "5").stdout)
    assert earlier["events"] == 5 and earlier["root"] != printed["root"]

    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(printed | {"root": "0" * 64}))
    bad = run(loaded, "verify", "--digest", str(forged))
    assert bad.exit_code == 1 and "ALTERED" in bad.stdout
    junk = tmp_path / "junk.json"
    junk.write_text("nope")
    assert run(loaded, "verify", "--digest", str(junk)).exit_code == 1


def test_forget(loaded: Path, events: list[dict[str, Any]]) -> None:
    with sqlite3.connect(loaded / "ledger.sqlite3") as conn:
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE originator_version = 1 LIMIT 1"
        ).fetchone()
    pseudo = orjson.loads(state)["envelope"]["data"]["applicant"]["pseudonym"]
    result = run(loaded, "forget", pseudo)
    assert result.exit_code == 0 and "forgot" in result.stdout
    again = run(loaded, "forget", pseudo)
    assert again.exit_code == 1 and "no key" in again.output
    assert run(loaded, "verify", "--all").exit_code == 0


def test_simulate_writes_valid_envelopes(tmp_path: Path) -> None:
    pytest.importorskip("simulator", reason="simulator not written yet")
    out = tmp_path / "e.jsonl"
    result = CliRunner().invoke(main, ["simulate", "--days", "1", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    from ledger.domain.events import validate

    lines = out.read_bytes().splitlines()
    assert lines and all(validate(orjson.loads(x)) for x in lines)


def test_simulate_out_dash_writes_the_same_envelopes_to_standard_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out -``: the very lines a file would get, on standard output (the summary goes
    to standard error), so ``dossier simulate --out - | dossier ingest -`` works."""
    monkeypatch.chdir(tmp_path)  # where a file named "-" would appear
    out = tmp_path / "e.jsonl"
    args = ["simulate", "--days", "1", "--seed", "2", "--out"]
    assert CliRunner().invoke(main, [*args, str(out)]).exit_code == 0
    piped = CliRunner().invoke(main, [*args, "-"])
    assert piped.exit_code == 0, piped.output
    assert piped.stdout_bytes.splitlines() == out.read_bytes().splitlines()
    assert not (tmp_path / "-").exists()


def test_every_core_command_has_help_with_an_example() -> None:
    for name in ("simulate", "ingest", "verify", "digest", "status", "forget"):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.stdout, name


# --- real processes -----------------------------------------------------------------


def dossier_script() -> str:
    found = shutil.which("dossier", path=str(Path(sys.executable).parent)) or shutil.which(
        "dossier"
    )
    if found is None:
        pytest.fail("the dossier console script is not installed (pip install -e .)")
    return found


def sh(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOSSIER_DATA_DIR": str(cwd / "data")}
    env.pop("DOSSIER_STORE", None)
    return subprocess.run(
        [dossier_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_console_script_ingest_verify(tmp_path: Path, events: list[dict[str, Any]]) -> None:
    write_jsonl(tmp_path / "e.jsonl", events)
    ingest = sh("ingest", "e.jsonl", cwd=tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    verify = sh("verify", "--all", cwd=tmp_path)
    assert verify.returncode == 0 and verify.stdout.rstrip().endswith("OK"), verify.stdout


def test_simulate_ingest_verify_pipeline(tmp_path: Path) -> None:
    try:
        from simulator import simulate  # noqa: F401
    except ImportError as e:
        pytest.skip(f"simulator.simulate not available yet: {e}")
    sim = sh("simulate", "--days", "3", "--seed", "1", "--out", "e.jsonl", cwd=tmp_path)
    assert sim.returncode == 0, sim.stderr
    ingest = sh("ingest", "e.jsonl", "--format", "json", cwd=tmp_path)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    first = json.loads(ingest.stdout)
    assert first["stored"] > 0 and first["rejected"] == 0
    verify = sh("verify", "--all", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout[-2000:]
    again = sh("ingest", "e.jsonl", "--format", "json", cwd=tmp_path)
    assert again.returncode == 0
    assert json.loads(again.stdout)["stored"] == 0
    assert json.loads(again.stdout)["duplicates"] == first["stored"]
