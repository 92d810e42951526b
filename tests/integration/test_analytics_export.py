"""``dossier export --parquet DIR``: every table, hive-partitioned by month, readable by pyarrow."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
from click.testing import CliRunner

from cli.main import main


def test_export_parquet_writes_every_table_by_month(tmp_path: Path) -> None:
    data, events, out = tmp_path / "data", tmp_path / "e.jsonl", tmp_path / "pq"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, [*args, "--data-dir", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    sim = ["simulate", "--days", "3", "--seed", "9", "--start", "2025-09-29", "--out", str(events)]
    assert runner.invoke(main, sim).exit_code == 0
    run("ingest", str(events))
    run("sink", "--source", "store")
    summary = json.loads(run("export", "--parquet", str(out), "--format", "json"))["parquet"]

    con = duckdb.connect(str(data / "analytics.snapshot.duckdb"), read_only=True)
    try:
        for table in ("events", "dossiers", "handovers"):
            (n,) = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
            assert summary["rows"][table] == n > 0
            dataset = ds.dataset(out / table, format="parquet", partitioning="hive")
            assert dataset.count_rows() == n
            months = {p.name for p in (out / table).iterdir()}
            assert {"month=2025-09", "month=2025-10"} <= months, months
        ids = ds.dataset(out / "dossiers", format="parquet", partitioning="hive").to_table(
            columns=["dossier_id", "month", "received_local"]
        )
        for dossier_id, month, received in zip(*(c.to_pylist() for c in ids.columns), strict=True):
            assert received.strftime("%Y-%m") == month, dossier_id  # each row in its month
        applicants = con.execute("SELECT count(*) FROM dossiers WHERE applicant LIKE 'ap-%'")
        assert applicants.fetchall()[0][0] == summary["rows"]["dossiers"]  # pseudonyms only
    finally:
        con.close()
    assert summary["rows"]["signals"] == 0 and not (out / "signals").exists()
    text = b"".join(p.read_bytes() for p in out.rglob("*.parquet"))
    assert b"sealed" not in text
