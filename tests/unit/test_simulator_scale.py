"""The simulator's size flag: a larger province is the same province with more
receipts, written as the days go, same seed same bytes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main


def simulate(tmp_path: Path, name: str, *args: str) -> tuple[bytes, bytes, dict]:
    out, labels = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.labels.jsonl"
    result = CliRunner().invoke(
        main,
        ["simulate", "--days", "3", "--seed", "5", "--out", str(out), "--labels", str(labels)]
        + list(args),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    return out.read_bytes(), labels.read_bytes(), summary


def test_dossiers_per_day_scales_the_receipts(tmp_path: Path) -> None:
    _, _, small = simulate(tmp_path, "small", "--dossiers-per-day", "20")
    _, _, large = simulate(tmp_path, "large", "--dossiers-per-day", "200")
    # the mean of receipts per working day moves the count by about its factor
    assert 5 * small["dossiers"] < large["dossiers"] < 20 * small["dossiers"]
    assert large["events"] > 5 * small["events"]


def test_same_seed_same_bytes_and_labels_in_event_order(tmp_path: Path) -> None:
    first = simulate(tmp_path, "a", "--dossiers-per-day", "150")
    second = simulate(tmp_path, "b", "--dossiers-per-day", "150")
    assert first[:2] == second[:2]
    order = {json.loads(line)["event_id"]: n for n, line in enumerate(first[0].splitlines())}
    rows = [json.loads(line) for line in first[1].splitlines()]
    assert rows and len(rows) == first[2]["labels"]
    keys = [(order[r["event_id"]], r["kind"], r["dossier_id"]) for r in rows]
    assert keys == sorted(keys)
