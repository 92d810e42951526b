"""The rebuild's derive shortcuts give the same rows as the plain computation.

``view`` and the control sheet reuse an event's own instant text when it is
already ``isoformat``'s, count office time as differences of ``office_us``, and
the runner builds sheet rows without a row dict: events written in other ISO
forms (``Z``, fractions, ``-00:00``) must still come out formatted, and every
value must be what the plain clock calls give.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from ledger.domain.working_calendar import BusinessCalendar
from projections import control_sheet, state
from projections.runner import sheet_rows
from projections.store import SHEET_COLUMNS
from tests.projection_factories import province, recorded, rules_for_tests

RULES = rules_for_tests()


@pytest.mark.parametrize(
    "text",
    [
        "2025-09-03T09:00:00+07:00",
        "2025-09-03T09:00:00+00:00",
        "2025-09-03T09:00:00-00:00",
        "2025-09-03T02:00:00Z",
        "2025-09-03T09:00+07:00",
        "2025-09-03T09:00:00.250000+07:00",
        "2025-09-03T09:00:00.5+07:00",
        "2025-09-03 09:00:00+07:00",
        "2025-09-03T09:00:00-05:30",
        "2025-09-03T09:00:00+07:00:00",
        "20250903T090000+07:00",
    ],
)
def test_as_written_only_when_isoformat_gives_the_same_text(text: str) -> None:
    same = datetime.fromisoformat(text).isoformat() == text
    if state.as_written(text):
        assert same
    else:  # conservative: only texts with a fraction are left to isoformat needlessly
        assert not same or "." in text


def _utc_z(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()[:-6] + "Z"


def _fraction(text: str) -> str:
    return datetime.fromisoformat(text).replace(microsecond=250_000).isoformat()


def _minus_zero(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()[:-6] + "-00:00"


def _rewritten(envelopes: list[dict], form) -> list[dict]:
    out = copy.deepcopy(envelopes)
    for env in out:
        env["occurred_at"] = form(env["occurred_at"])
        for key in ("appointment_at", "new_appointment_at"):
            if env["data"].get(key):
                env["data"][key] = form(env["data"][key])
    return out


def _by_dossier(envelopes: list[dict]) -> dict[str, state.Facts]:
    folds: dict[str, state.Facts] = {}
    for rec in recorded(envelopes):
        did = rec.envelope["dossier_id"]
        folds[did] = state.evolve(folds.get(did, state.EMPTY), rec)
    return folds


def _formatted(text: str | None) -> bool:
    return text is None or datetime.fromisoformat(text).isoformat() == text


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@pytest.mark.parametrize("rule_set", ["R-restart", "R-pause"])
@pytest.mark.parametrize("form", [_utc_z, _minus_zero])
def test_instants_written_otherwise_still_come_out_formatted(form, rule_set: str) -> None:
    envelopes = province(80, seed=7, rule_set=rule_set)
    plain = _by_dossier(envelopes)
    other = _by_dossier(_rewritten(envelopes, form))
    assert plain.keys() == other.keys()
    rows_seen = 0
    for did, facts in other.items():
        v, ref = state.view(facts, RULES), state.view(plain[did], RULES)
        for key in ("as_of", "ended_at", "original_due_at", "current_due_at", "due_pause_at"):
            assert _formatted(v[key]), (did, key, v[key])
            assert _instant(v[key]) == _instant(ref[key]), (did, key)
        assert v["working_used_s"] == ref["working_used_s"]
        assert v["working_left_s"] == ref["working_left_s"]
        rows = control_sheet.rows(facts, RULES, dossier_due=v["original_due_at"])
        refs = control_sheet.rows(plain[did], RULES)
        for r, q in zip(rows, refs, strict=True):
            rows_seen += 1
            assert _formatted(r["step_ended_at"]) and _formatted(r["step_deadline"])
            assert _instant(r["step_ended_at"]) == _instant(q["step_ended_at"])
            assert _instant(r["step_deadline"]) == _instant(q["step_deadline"])
            assert (r["result"], r["step_working_s"]) == (q["result"], q["step_working_s"])
    assert rows_seen > 50


def test_fractional_seconds_change_nothing_but_the_text() -> None:
    envelopes = province(40, seed=3, rule_set="R-pause")
    for did, facts in _by_dossier(_rewritten(envelopes, _fraction)).items():
        for r in control_sheet.rows(facts, RULES):
            assert _formatted(r["step_ended_at"]), (did, r["step_ended_at"])
            if r["step_ended_at"] is not None:
                assert r["step_ended_at"].endswith(".250000+07:00")


def test_sheet_rows_are_the_row_dicts_in_table_column_order() -> None:
    folds = _by_dossier(province(80, seed=11, rule_set="R-restart"))
    compared = 0
    for facts in folds.values():
        due = state.view(facts, RULES)["original_due_at"]
        expected = []
        for r in control_sheet.rows(facts, RULES, dossier_due=due):
            r = dict(r, dossier_id=facts["dossier_id"])
            if r["budget"] is not None:
                r["budget"] = orjson.dumps(r["budget"], option=orjson.OPT_SORT_KEYS).decode()
            if r["acknowledged"] is not None:
                r["acknowledged"] = int(r["acknowledged"])
            expected.append(tuple(r[c] for c in SHEET_COLUMNS))
        assert sheet_rows(facts, RULES, due) == expected
        compared += len(expected)
    assert compared > 50


def test_office_us_differences_are_working_time() -> None:
    cal = BusinessCalendar.for_rules(RULES.get("R-restart"), None)
    tz = cal.tz
    start = datetime(2025, 8, 28, 6, 45, tzinfo=timezone(timedelta(hours=7)))
    for hours in (0, 0.5, 3, 7.25, 30, 100, 400, 2000):
        end = start + timedelta(hours=hours)
        us = cal.office_us(end.astimezone(tz)) - cal.office_us(start.astimezone(tz))
        assert timedelta(microseconds=us) == cal.working_time(start, end)
