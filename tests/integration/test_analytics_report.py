"""``report_period`` and ``index_766_progress`` against an independent count from the raw JSON Lines.

A simulated province crossing a month and a quarter end is ingested and loaded
with ``dossier sink``; the test then folds the raw JSON Lines itself, per
dossier, up to the last instant of each period, asks the one definition of
deadlines (:func:`projections.state.view`) for each dossier's class at that
instant, and counts in plain Python. Nothing of ``analytics`` is used for the
expected figures.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.domain.rules import RuleBook, load_rules
from projections.state import evolve_into, view

START = date(2025, 9, 24)
DAYS = 8


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("province")
    data = tmp / "data"
    events = tmp / "events.jsonl"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, [*args, "--data-dir", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    runner.invoke(
        main,
        [
            "simulate",
            "--days",
            str(DAYS),
            "--seed",
            "7",
            "--start",
            START.isoformat(),
            "--out",
            str(events),
        ],
        catch_exceptions=False,
    )
    run("ingest", str(events))
    summary = json.loads(run("sink", "--source", "store", "--page", "4000"))
    lines = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    assert summary["loaded"] == len(lines)
    return {"data": data, "lines": lines, "db": data / "analytics.duckdb"}


def _bounds(period: str) -> tuple[date, date]:
    if "-Q" in period:
        y, q = period.split("-Q")
        first = date(int(y), 3 * int(q) - 2, 1)
        months = 3
    else:
        y, m = period.split("-")
        first, months = date(int(y), int(m), 1), 1
    k = first.month - 1 + months
    return first, date(first.year + k // 12, k % 12 + 1, 1)


def _pause_rules(rules: RuleBook) -> RuleBook:
    return RuleBook(tuple(replace(r, supplement_mode="pause") for r in rules.rule_sets))


_EXPECTED: dict[tuple[int, str], tuple[dict, dict]] = {}


def expected(lines: list[dict[str, Any]], period: str) -> tuple[dict, dict]:
    key = (id(lines), period)
    if key not in _EXPECTED:
        _EXPECTED[key] = _count(lines, period)
    return _EXPECTED[key]


def _count(lines: list[dict[str, Any]], period: str) -> tuple[dict, dict]:
    """(form counts by (agency, channel), 766 (numerator, denominator) by agency) at the
    period's last instant, counted from the raw envelopes."""
    rules = load_rules()
    pause = _pause_rules(rules)
    tz = ZoneInfo(rules.latest.timezone)
    first, after = _bounds(period)
    start = datetime.combine(first, time.min, tz)
    now = datetime.combine(after, time.min, tz) - timedelta(microseconds=1)
    per_dossier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for env in lines:
        per_dossier[env["dossier_id"]].append(env)
    form: dict[tuple[str, str], Counter] = defaultdict(Counter)
    i766: dict[str | None, Counter] = defaultdict(Counter)
    for envs in per_dossier.values():
        upto = [e for e in envs if datetime.fromisoformat(e["occurred_at"]) <= now]
        if not upto:
            continue  # received after the period
        facts: dict[str, Any] = {}
        for n, env in enumerate(upto, 1):
            evolve_into(facts, n, env)
        v = view(facts, rules, now)
        v766 = view(facts, pause, now)
        ended = None if v["ended_at"] is None else datetime.fromisoformat(v["ended_at"])
        if ended is not None and ended < start:
            continue  # finished before the period began
        c = form[(v["agency"], v["channel"])]
        if datetime.fromisoformat(v["received_at"]) >= start:
            c["received_online" if v["channel"] == "online" else "received_direct_postal"] += 1
        else:
            c["carried_over"] += 1
        if ended is not None:
            c["resolved_" + v["on_time"].lower()] += 1
        elif v["on_time"] in ("WITHIN_DEADLINE", "EARLY", "ON_TIME"):
            c["open_within"] += 1
        else:
            c["open_overdue"] += 1
        good = v766["on_time"] in ("EARLY", "ON_TIME", "WITHIN_DEADLINE")
        for key in (v["agency"], None):
            i766[key]["denominator"] += 1
            i766[key]["numerator"] += good
    return form, i766


FORM = (
    "received_online",
    "received_direct_postal",
    "carried_over",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "open_within",
    "open_overdue",
)


def _periods(lines: list[dict[str, Any]]) -> list[str]:
    last = max(datetime.fromisoformat(e["occurred_at"]) for e in lines)
    return ["2025-09", "2025-10", "2025-Q3", "2025-Q4", last.strftime("%Y-%m")]


def test_report_period_equals_an_independent_count(province: dict[str, Any]) -> None:
    con = duckdb.connect(str(province["db"]), read_only=True)
    try:
        for period in _periods(province["lines"]):
            form, _ = expected(province["lines"], period)
            rows = con.execute(
                f"SELECT agency, channel, {', '.join(FORM)}, received_total, denominator_value, "
                "denominator FROM report_period WHERE period = ?",
                [period],
            ).fetchall()
            got = {(r[0], r[1]): dict(zip(FORM, r[2:10], strict=True)) for r in rows}
            want = {k: {f: c[f] for f in FORM} for k, c in form.items()}
            assert got == want, period
            assert all(r[10] == r[11] == sum(r[2:5]) for r in rows)  # received = new + carried
            assert {r[12] for r in rows} == {"received_total"}
            assert sum(c["carried_over"] for c in want.values()) > 0 or period in (
                "2025-09",
                "2025-Q3",
            )
    finally:
        con.close()


def test_index_766_progress_equals_an_independent_count(province: dict[str, Any]) -> None:
    con = duckdb.connect(str(province["db"]), read_only=True)
    try:
        for period in _periods(province["lines"]):
            _, i766 = expected(province["lines"], period)
            rows = con.execute(
                "SELECT agency, received_or_processed, finished_on_time + open_within, progress "
                "FROM index_766_progress WHERE period = ?",
                [period],
            ).fetchall()
            got = {r[0]: (r[1], r[2], r[3]) for r in rows}
            want = {
                k: (
                    c["denominator"],
                    c["numerator"],
                    round(20 * c["numerator"] / c["denominator"], 4),
                )
                for k, c in i766.items()
            }
            assert got == want, period
    finally:
        con.close()


def test_the_month_end_states_are_stored_for_open_dossiers(province: dict[str, Any]) -> None:
    con = duckdb.connect(str(province["db"]), read_only=True)
    try:
        (n,) = con.execute(
            "SELECT count(*) FROM dossier_period_ends WHERE month_end = DATE '2025-09-30'"
        ).fetchone()
        (open_at_end,) = con.execute(
            "SELECT sum(open_within + open_overdue) FROM report_period WHERE period = '2025-09'"
        ).fetchone()
    finally:
        con.close()
    assert n == open_at_end > 0
