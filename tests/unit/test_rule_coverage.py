"""Dossiers received on a day no rule set covers, and rules files that add rule sets."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.bootstrap import open_ledger
from ledger.domain.rules import NoRuleSetInForce, RulesError, load_rules
from ledger.domain.working_calendar import BusinessCalendar
from ledger.settings import Settings
from simulator.factories import dossier_life

PARIS = timezone(timedelta(hours=2))
CITY_RULES = """
extends: packaged
rule_sets:
  - id: CITY-2011/v1
    legal_basis: "a city's permit rules, 2010-2012"
    effective_from: 2010-01-01
    effective_to: 2012-12-31
    timezone: Europe/Paris
    holidays: FR
    granularity: minutes
"""


def _old_dossier(dossier_id: str) -> list[dict]:
    return dossier_life(dossier_id, random.Random(7), start=datetime(2011, 10, 11, 9, tzinfo=PARIS))


def test_a_dossier_before_every_rule_set_is_a_clean_line_rejection(tmp_path: Path) -> None:
    old = _old_dossier("OLD-1")
    new = dossier_life("NEW-1", random.Random(8))
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in [old[0], *new]))
    result = CliRunner().invoke(
        main, ["ingest", str(path), "--data-dir", str(tmp_path / "d"), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    assert (
        f"{path}:1: dossier OLD-1: no rule set in force on 2011-10-11; give data.rule_set or a "
        "rules file (DOSSIER_RULES) that covers it"
    ) in result.output
    assert "Traceback" not in result.output
    summary = orjson.loads(result.output.strip().splitlines()[-1])
    assert summary["stored"] == len(new) and summary["rejected"] == 1
    status = open_ledger(Settings.from_env(tmp_path / "d")).status()
    assert status == {"events": len(new), "dossiers": 1, "position": len(new)}


def test_the_same_rejection_in_a_dry_run_and_through_append_batch(tmp_path: Path) -> None:
    ledger = open_ledger(Settings.from_env(tmp_path / "d"))
    old = _old_dossier("OLD-2")
    for dry in (True, False):
        result = ledger.append_batch(old[:1], dry_run=dry)
        assert [r.field for r in result.rejected] == ["data.rule_set"]
        assert result.rejected[0].reason.startswith("dossier OLD-2: no rule set in force on")


def test_a_rules_file_that_extends_the_packaged_ones_covers_old_dossiers(tmp_path: Path) -> None:
    rules = tmp_path / "city.yaml"
    rules.write_text(CITY_RULES, encoding="utf-8")
    book = load_rules(rules)
    assert [r.id for r in book.rule_sets] == ["CITY-2011/v1", "ND61-2018/v1", "ND118-2025/v1"]
    assert book.in_force(datetime(2011, 10, 11, 9, tzinfo=PARIS)).id == "CITY-2011/v1"
    assert book.in_force(date(2025, 9, 1)).id == "ND118-2025/v1"
    with pytest.raises(NoRuleSetInForce, match="2013-01-01"):
        book.in_force(date(2013, 1, 1))
    ledger = open_ledger(Settings.from_env(tmp_path / "d", rules_path=str(rules)))
    old = _old_dossier("OLD-3")
    result = ledger.append_batch(old)
    assert not result.rejected and len(result.stored) == len(old)
    assert result.stored[0].envelope["data"]["rule_set"] == "CITY-2011/v1"


def test_a_rule_set_counts_the_holidays_of_its_own_country(tmp_path: Path) -> None:
    rules = tmp_path / "city.yaml"
    rules.write_text(CITY_RULES, encoding="utf-8")
    city = BusinessCalendar.for_rules(load_rules(rules).get("CITY-2011/v1"))
    vn = BusinessCalendar.for_rules(load_rules().get("ND61-2018/v1"))
    assert not city.is_working_day(date(2011, 7, 14))  # Bastille Day, a Thursday
    assert vn.is_working_day(date(2018, 7, 12)) and vn.is_working_day(date(2019, 7, 11))
    assert not vn.is_working_day(date(2019, 9, 2))  # National Day
    assert city.is_working_day(date(2011, 9, 2))


def test_rules_files_that_cannot_extend_are_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: elsewhere\nrule_sets: []\n", encoding="utf-8")
    with pytest.raises(RulesError, match="extends"):
        load_rules(bad)
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "extends: packaged\nrule_sets:\n  - id: ND61-2018/v1\n    effective_from: 2010-01-01\n"
        "    effective_to: 2011-01-01\n",
        encoding="utf-8",
    )
    with pytest.raises(RulesError, match="ND61-2018/v1 is defined twice"):
        load_rules(twice)
    overlap = tmp_path / "overlap.yaml"
    overlap.write_text(
        "extends: packaged\nrule_sets:\n  - id: X/v1\n    effective_from: 2024-01-01\n",
        encoding="utf-8",
    )
    with pytest.raises(RulesError, match="overlap"):
        load_rules(overlap)
    country = tmp_path / "country.yaml"
    country.write_text(CITY_RULES.replace("holidays: FR", "holidays: XX"), encoding="utf-8")
    with pytest.raises(RulesError, match="holidays"):
        load_rules(country)
