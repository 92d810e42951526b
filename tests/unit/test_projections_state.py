"""The current-state fold: deadlines of record, supplements, pauses, apologies, on-time class."""

from __future__ import annotations

import copy
from datetime import datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.events import Recorded
from projections import state
from tests.projection_factories import DossierBuilder, province, recorded, rules_for_tests, t

RULES = rules_for_tests()


def at(local: str) -> datetime:
    return datetime.fromisoformat(t(local))


def view_of(b: DossierBuilder, now: str | None = None) -> dict:
    return state.view(state.fold(recorded(b.envelopes)), RULES, at(now) if now else None)


def test_due_skips_national_day_holidays() -> None:
    b = DossierBuilder("H1", "2025-08-29 10:00", rule_set="R-restart")  # Fri; 1-2 Sep off
    v = view_of(b)
    assert v["computed_due_at"] == t("2025-09-05 17:00")
    assert v["original_due_at"] == v["current_due_at"] == t("2025-09-05 17:00")


@pytest.mark.parametrize(
    ("result_at", "expected"),
    [("2025-09-04 16:00", "EARLY"), ("2025-09-05 16:59", "ON_TIME"), ("2025-09-08 08:00", "LATE")],
)
def test_finished_class_against_due_date(result_at: str, expected: str) -> None:
    b = DossierBuilder("H2", "2025-08-29 10:00", rule_set="R-restart").result(result_at)
    v = view_of(b)
    assert v["on_time"] == expected
    assert v["status"] == "RESOLVED" and v["ended_at"] == t(result_at)


def test_make_up_saturday_counts_as_a_working_day() -> None:
    b = DossierBuilder("M1", "2025-04-24 10:00", rule_set="R-pause")  # Thu; Sat 26 Apr worked
    assert view_of(b)["original_due_at"] == t("2025-04-28 17:00")


def test_clock_pause_extends_the_deadline_in_both_modes() -> None:
    for rs in ("R-restart", "R-pause"):
        b = DossierBuilder("P1", "2025-09-03 09:00", rule_set=rs)
        b.pause("2025-09-04 07:30").resume("2025-09-05 07:30")  # one working day
        v = view_of(b)
        assert v["computed_due_at"] == t("2025-09-08 17:00")
        assert v["original_due_at"] == t("2025-09-09 17:00"), rs
        assert v["paused_s"] == 7 * 3600 + 1800
        assert v["pauses"] == 1 and not v["clock_paused"]


def _supplemented(rule_set: str) -> DossierBuilder:
    b = DossierBuilder("S1", "2025-09-03 09:00", rule_set=rule_set)
    b.handover("2025-09-03 10:00", "h-1", "appraisal", budget=(1, "working_days"))
    b.supplement_requested("2025-09-04 10:00").supplement_received("2025-09-08 10:00")
    return b


def test_supplement_restart_and_pause_figures_both_kept() -> None:
    restart = view_of(_supplemented("R-restart"))
    pause = view_of(_supplemented("R-pause"))
    for v in (restart, pause):
        assert v["due_restart_at"] == t("2025-09-11 17:00")  # 3 wd from the answer
        assert v["due_pause_at"] == t("2025-09-10 17:00")  # + 15 working hours waited
        assert v["paused_s"] == 15 * 3600
        assert v["supplement_requests"] == 1 and not v["awaiting_supplement"]
    assert restart["original_due_at"] == t("2025-09-11 17:00")
    assert pause["original_due_at"] == t("2025-09-10 17:00")


def test_supplement_mode_decides_the_class() -> None:
    restart = _supplemented("R-restart").result("2025-09-11 10:00")
    pause = _supplemented("R-pause").result("2025-09-11 10:00")
    assert view_of(restart)["on_time"] == "ON_TIME"
    assert view_of(pause)["on_time"] == "LATE"


def test_pause_mode_more_than_one_request_counts_as_late() -> None:
    b = _supplemented("R-pause")
    b.supplement_requested("2025-09-08 11:00").supplement_received("2025-09-08 14:00")
    b.result("2025-09-08 16:00")
    assert view_of(b)["on_time"] == "LATE"
    assert view_of(b)["supplement_requests"] == 2


def test_still_waiting_pause_mode_ends_at_the_request_restart_mode_stops_the_clock() -> None:
    for rs, expected in (("R-pause", "EARLY"), ("R-restart", "WITHIN_DEADLINE")):
        b = DossierBuilder("W1", "2025-09-03 09:00", rule_set=rs)
        b.supplement_requested("2025-09-04 10:00")
        v = view_of(b, now="2025-10-01 09:00")
        assert v["status"] == "AWAITING_SUPPLEMENT" and v["awaiting_supplement"]
        assert v["on_time"] == expected, rs


def test_apology_moves_current_due_only() -> None:
    b = DossierBuilder("A1", "2025-09-03 09:00", rule_set="R-restart")
    b.apology("2025-09-05 09:00", "2025-09-12 17:00").result("2025-09-10 10:00")
    v = view_of(b)
    assert v["original_due_at"] == t("2025-09-08 17:00")
    assert v["current_due_at"] == t("2025-09-12 17:00")
    assert v["apology_issued"] and v["apologies"] == 1
    assert v["on_time"] == "LATE"  # an apology does not make a dossier on time


def test_appointment_on_the_receipt_is_the_deadline_of_record() -> None:
    b = DossierBuilder(
        "R1", "2025-09-03 09:00", rule_set="R-restart", appointment_at="2025-09-10 17:00"
    )
    b.result("2025-09-09 15:00")
    v = view_of(b)
    assert v["computed_due_at"] == t("2025-09-08 17:00")
    assert v["original_due_at"] == v["appointment_at"] == t("2025-09-10 17:00")
    assert v["on_time"] == "EARLY"


def test_open_dossier_is_overdue_only_after_the_due_date() -> None:
    b = DossierBuilder("O1", "2025-09-03 09:00", rule_set="R-restart")
    b.handover("2025-09-03 10:00", "h-1", "appraisal")
    assert view_of(b, now="2025-09-08 16:00")["on_time"] == "WITHIN_DEADLINE"
    assert view_of(b, now="2025-09-09 08:00")["on_time"] == "OVERDUE"
    assert view_of(b)["holder"] == "h-1" and view_of(b)["status"] == "IN_PROGRESS"


def test_working_time_used_and_left() -> None:
    b = DossierBuilder("T1", "2025-09-03 09:00", rule_set="R-restart")
    v = view_of(b, now="2025-09-03 11:00")
    assert v["working_used_s"] == 2 * 3600
    assert v["working_left_s"] == int(26.5 * 3600)  # rest of Wed + Thu + Fri + Mon
    late = view_of(b, now="2025-09-09 09:30")
    assert late["working_left_s"] == -2 * 3600


def test_transfer_to_agency_moves_the_holder() -> None:
    b = DossierBuilder("X1", "2025-09-03 09:00", rule_set="R-restart")
    b.transfer("2025-09-03 10:00", "SO-XD", "opinion", budget=(2, "working_days"))
    v = view_of(b)
    assert v["holder"] is None and v["holder_agency"] == "SO-XD" and v["step"] == "opinion"


def test_withdrawal_ends_the_dossier() -> None:
    b = DossierBuilder("X2", "2025-09-03 09:00", rule_set="R-restart").withdrawn("2025-09-04 09:00")
    v = view_of(b, now="2025-12-01 09:00")
    assert v["status"] == "WITHDRAWN" and not v["open"] and v["on_time"] == "EARLY"


def test_evolve_never_mutates_its_input() -> None:
    recs = recorded(_supplemented("R-pause").result("2025-09-11 10:00").envelopes)
    s = state.EMPTY
    for rec in recs:
        before = copy.deepcopy(s)
        s2 = state.evolve(s, rec)
        assert s == before
        s = s2


def test_unknown_type_raises_type_error_and_orphan_event_value_error() -> None:
    recs = recorded(DossierBuilder("E1", "2025-09-03 09:00").envelopes)
    s = state.fold(recs)
    bogus = Recorded(9, 2, {**recs[0].envelope, "type": "Teleported"})
    with pytest.raises(TypeError, match="Teleported"):
        state.evolve(s, bogus)
    orphan = Recorded(9, 2, {**recs[0].envelope, "type": "ClockPaused", "data": {"reason": "x"}})
    with pytest.raises(ValueError, match="before its DossierReceived"):
        state.evolve(state.EMPTY, orphan)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.floats(0, 1))
def test_resuming_from_a_stored_fold_equals_an_uninterrupted_fold(seed: int, cut: float) -> None:
    """What the runner does: store the facts as JSON at any point, reload, continue."""
    envs = province(3, seed=seed, rule_set=seed % 2 and "R-pause" or "R-restart")
    recs = recorded(envs)
    straight: dict[str, state.Facts] = {}
    for r in recs:
        straight[r.dossier_id] = state.evolve(straight.get(r.dossier_id, state.EMPTY), r)
    k = int(cut * len(recs))
    resumed: dict[str, state.Facts] = {}
    for r in recs[:k]:
        resumed[r.dossier_id] = state.evolve(resumed.get(r.dossier_id, state.EMPTY), r)
    resumed = orjson.loads(orjson.dumps(resumed))
    for r in recs[k:]:
        resumed[r.dossier_id] = state.evolve(resumed.get(r.dossier_id, state.EMPTY), r)
    assert orjson.dumps(resumed, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        straight, option=orjson.OPT_SORT_KEYS
    )
    for did, facts in straight.items():
        assert state.view(facts, RULES) == state.view(resumed[did], RULES)


def test_the_restarted_appointment_synced_to_the_portal_is_the_deadline_of_record() -> None:
    b = _supplemented("R-restart")
    plain = view_of(b)
    answer = b.envelopes[-1]
    assert answer["type"] == "SupplementReceived"
    answer["data"]["new_appointment_at"] = t("2025-09-12 17:00")  # the desk gave a day more
    synced = view_of(b)
    assert plain["original_due_at"] == t("2025-09-11 17:00")  # computed from the answer
    assert synced["original_due_at"] == synced["due_restart_at"] == t("2025-09-12 17:00")
    assert synced["due_pause_at"] == plain["due_pause_at"]  # the pause clock is the law's
