"""The packaged procedure catalogue: complete, dated without gaps, budgets that add up."""

from __future__ import annotations

import csv
import importlib.util
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from ledger.domain.catalog import CatalogError, load_catalog, step_plan
from ledger.domain.durations import Duration
from ledger.domain.events import ROLES, TIME_UNITS

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT.parent / "shared" / "data" / "procedures.csv"
DOC = re.compile(r"^\d\.\d{6}\.[DR]\d{2}$")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_loads_every_national_procedure_once(catalog) -> None:
    assert len(catalog) == 2642
    assert len(set(catalog.codes)) == 2642
    assert load_catalog() is catalog  # cached, not seed-dependent


def test_every_version_has_a_valid_allowance(catalog) -> None:
    for code in catalog:
        for v in catalog.versions(code):
            assert isinstance(v.allowance, Duration)
            assert v.allowance.unit in TIME_UNITS
            assert v.allowance.value > 0 or v.allowance.unit == "same_day"
            assert v.online_level in ("none", "partial", "full")
            assert set(v.channels) <= {"direct", "online", "postal"} and v.channels


def test_unknown_limits_get_a_marked_default(catalog) -> None:
    assumed = [c for c in catalog if "allowance" in catalog.latest(c).assumed]
    assert len(assumed) == 358  # unit `unknown` in the source data
    assert all(catalog.latest(c).allowance.unit == "working_days" for c in assumed)


def test_step_budgets_sum_to_the_allowance(catalog) -> None:
    for code in catalog:
        for v in catalog.versions(code):
            total = sum(s.budget.value for s in v.steps)
            assert total == pytest.approx(v.allowance.value, abs=0.011), (code, v.steps)
            assert all(s.budget.unit == v.allowance.unit for s in v.steps)
            assert all(s.budget.value >= 0 for s in v.steps)
            assert [s.name for s in v.steps][0] == "intake"
            assert [s.name for s in v.steps][-2:] == ["approval", "return"]
            assert all(s.role in ROLES for s in v.steps)


def test_some_procedures_consult_another_body(catalog) -> None:
    consulting = [c for c in catalog if catalog.latest(c).consultation]
    assert 200 < len(consulting) < 600
    v = catalog.latest(consulting[0])
    assert v.step("consultation").unit == "partner"


def test_versions_are_contiguous_and_exactly_one_is_in_force(catalog) -> None:
    for code in catalog:
        versions = catalog.versions(code)
        for a, b in zip(versions, versions[1:], strict=False):
            assert a.valid_to is not None and b.valid_from == a.valid_to + timedelta(days=1)
        assert versions[-1].valid_to is None
        day = date(2025, 9, 1)
        in_force = [v for v in versions if v.covers(day)]
        assert in_force == [catalog.in_force(code, day)]


def test_superseded_versions_are_recognisable(catalog) -> None:
    day = date(2025, 9, 1)
    superseded = [
        v
        for c in catalog
        for v in catalog.versions(c)
        if v.valid_to is not None and v.valid_to < day
    ]
    assert 600 < len(superseded) < 1000
    old = superseded[0]
    assert not catalog.is_valid(old.code, old.version, day)
    assert catalog.is_valid(old.code, old.version, old.valid_to)
    current = catalog.in_force(old.code, day)
    assert set(old.documents) - set(current.documents)  # the abolished document
    assert old.allowance.value > current.allowance.value
    # a few procedures switch version after the default simulation start
    later = [c for c in catalog if catalog.latest(c).valid_from > day]
    assert 50 < len(later) < 200


def test_unknown_codes_and_versions(catalog) -> None:
    with pytest.raises(CatalogError):
        catalog.versions("9.999999")
    with pytest.raises(CatalogError):
        catalog.version(catalog.codes[0], "99")
    assert not catalog.is_valid("9.999999", "1", date(2025, 9, 1))
    assert catalog.in_force(catalog.codes[0], date(2018, 1, 1)) is None


def test_document_codes_are_stable_and_named(catalog) -> None:
    v = catalog.in_force("1.000010", date(2025, 9, 1))
    assert v.documents[0] == "1.000010.D01"
    listed = set()
    for code in catalog:
        for ver in catalog.versions(code):
            for doc in ver.documents:
                assert DOC.match(doc) and doc.startswith(code + ".")
                assert catalog.document_name(doc)
                listed.add(doc)
    assert catalog.extra_documents
    for doc in catalog.extra_documents:
        assert doc not in listed and catalog.document_name(doc)
        assert not catalog.is_listed(v.code, v.version, doc)


def test_step_plan_rounds_but_keeps_the_total() -> None:
    steps = step_plan("1.000010", Duration(3, "working_days"))
    assert sum(s.budget.value for s in steps) == pytest.approx(3)
    assert {s.name for s in steps} >= {"intake", "appraisal", "approval", "return"}


@pytest.mark.skipif(not CSV.exists(), reason="shared/data/procedures.csv is not available")
def test_packaged_file_is_what_the_script_derives(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_catalog", ROOT / "scripts" / "make_catalog.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = tmp_path / "procedures.json.gz"
    module.write(module.build(rows), out)
    packaged = ROOT / "ledger" / "domain" / "catalogdata" / "procedures.json.gz"
    assert out.read_bytes() == packaged.read_bytes()
