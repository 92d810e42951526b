"""Table, CSV, JSON and HTML output, and the shared --format option."""

from __future__ import annotations

import csv
import io
import json

import click
import pytest
from click.testing import CliRunner

from cli.options import format_option
from cli.render import render

ROWS = [
    {"seq": 1, "to": "h-1", "budget": {"value": 2, "unit": "working_days"}, "ok": True},
    {"seq": 2, "to": "<b>&", "budget": None, "ok": False},
]
COLS = ("seq", "to", "budget", "ok")


def test_table_aligns_columns_and_flattens_values() -> None:
    lines = render(ROWS, COLS, "table").splitlines()
    assert lines[0].split() == list(COLS)
    assert "2 working_days" in lines[2] and lines[2].rstrip().endswith("yes")
    assert len({line.index("to") if "to" in line else None for line in lines[:1]}) == 1


def test_csv_round_trips() -> None:
    parsed = list(csv.reader(io.StringIO(render(ROWS, COLS, "csv"))))
    assert parsed[0] == list(COLS)
    assert parsed[1] == ["1", "h-1", "2 working_days", "yes"]


def test_json_keeps_structure_and_header() -> None:
    out = json.loads(render(ROWS, COLS, "json", header={"dossier_id": "D1"}))
    assert out["header"] == {"dossier_id": "D1"} and out["rows"][0]["budget"]["unit"]


def test_html_escapes() -> None:
    html = render(ROWS, COLS, "html", title="Form 05")
    assert "&lt;b&gt;&amp;" in html and "<b>&" not in html and "<h1>Form 05</h1>" in html


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(ROWS, COLS, "xml")


def test_format_option_limits_choices() -> None:
    @click.command()
    @format_option("table", "json")
    def cmd(fmt: str) -> None:
        click.echo(fmt)

    runner = CliRunner()
    assert runner.invoke(cmd, ["--format", "json"]).output == "json\n"
    assert runner.invoke(cmd, []).output == "table\n"
    bad = runner.invoke(cmd, ["--format", "html"])
    assert bad.exit_code == 2 and "html" in bad.output
