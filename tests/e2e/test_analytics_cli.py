"""``dossier query`` and ``dossier report`` on a small loaded database."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from analytics.report import parse_period
from cli.main import main
from simulator.factories import event_stream, write_jsonl

pytestmark = pytest.mark.e2e


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--data-dir", str(data)])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    data = tmp / "data"
    assert (
        run(data, "ingest", str(write_jsonl(tmp / "e.jsonl", event_stream(30, seed=11)))).exit_code
        == 0
    )
    result = run(data, "sink", "--source", "store")
    assert result.exit_code == 0, result.output
    return data


def test_query_prints_table_csv_and_json(loaded: Path) -> None:
    sql = "SELECT count(*) AS n, count(DISTINCT dossier_id) AS d FROM events"
    as_json = run(loaded, "query", sql, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    [row] = json.loads(as_json.stdout)
    assert row["n"] > row["d"] == 30
    as_csv = run(loaded, "query", sql, "--format", "csv")
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["n", "d"], [str(row["n"]), "30"]]
    table = run(loaded, "query", sql)
    assert table.stdout.splitlines()[0].split() == ["n", "d"]


def test_query_reports_bad_sql_clearly(loaded: Path) -> None:
    result = run(loaded, "query", "SELECT nope FROM dossiers")
    assert result.exit_code == 1 and "query failed" in result.output and "nope" in result.output


def test_query_without_a_database_says_so(tmp_path: Path) -> None:
    result = run(tmp_path, "query", "SELECT 1")
    assert result.exit_code == 1 and "no analytics database yet" in result.output


def test_report_md_and_csv_agree_with_the_view(loaded: Path) -> None:
    month = json.loads(
        run(loaded, "query", "SELECT strftime(min(received_local), '%Y-%m') AS m FROM dossiers",
            "--format", "json").stdout
    )[0]["m"]  # fmt: skip
    want = json.loads(
        run(loaded, "query", f"SELECT sum(received_total) AS t FROM report_period WHERE period = '{month}'",
            "--format", "json").stdout
    )[0]["t"]  # fmt: skip
    md = run(loaded, "report", "--period", month, "--format", "md")
    assert md.exit_code == 0, md.output
    assert f"# Periodic report {month}" in md.stdout and "FROM report_period" in md.stdout
    sources = [
        line[len("Source: `") : -1]
        for line in md.stdout.splitlines()
        if line.startswith("Source: `")
    ]
    assert len(sources) == 7
    for sql in sources:  # every figure's query reruns as printed
        again = run(loaded, "query", sql, "--format", "json")
        assert again.exit_code == 0, (sql, again.output)
    rows = list(
        csv.DictReader(
            io.StringIO(run(loaded, "report", "--period", month, "--format", "csv").stdout)
        )
    )
    assert rows[-1]["agency"] == "TOTAL" and int(rows[-1]["received_total"]) == want > 0
    assert sum(int(r["received_total"]) for r in rows[:-1]) == want


def test_report_rejects_a_bad_period(loaded: Path) -> None:
    result = run(loaded, "report", "--period", "2025-13", "--format", "md")
    assert result.exit_code == 2 and "YYYY-MM, YYYY-Qn or YYYY" in result.output


@pytest.mark.parametrize(
    ("text", "kind", "first", "after"),
    [
        ("2025-09", "month", "2025-09-01", "2025-10-01"),
        ("2025-12", "month", "2025-12-01", "2026-01-01"),
        ("2025-Q4", "quarter", "2025-10-01", "2026-01-01"),
        ("2026", "year", "2026-01-01", "2027-01-01"),
    ],
)
def test_periods(text: str, kind: str, first: str, after: str) -> None:
    k, a, b = parse_period(text)
    assert (k, a.isoformat(), b.isoformat()) == (kind, first, after)
