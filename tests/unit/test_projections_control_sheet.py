"""Form 05 rows and step results on hand-made dossiers (holidays, make-up days, pauses, supplements)."""

from __future__ import annotations

from datetime import datetime

from projections import audit_trail, control_sheet, state, workload
from tests.projection_factories import DossierBuilder, recorded, rules_for_tests, t

RULES = rules_for_tests()


def sheet(b: DossierBuilder) -> list[dict]:
    return control_sheet.rows(state.fold(recorded(b.envelopes)), RULES)


def test_one_row_per_hand_over_with_giver_receiver_and_instant() -> None:
    b = DossierBuilder("C1", "2025-09-03 08:00", rule_set="R-restart", receiver="rc-9")
    b.handover("2025-09-03 09:00", "h-1", "appraisal", budget=(2, "working_days"))
    b.handover("2025-09-04 09:00", "lead-1", "approval", budget=(1, "working_days"))
    b.result("2025-09-05 15:00")
    rows = sheet(b)
    assert [(r["seq"], r["from_official"], r["to_official"], r["step"]) for r in rows] == [
        (1, "rc-9", "h-1", "appraisal"),
        (2, "h-1", "lead-1", "approval"),
    ]
    assert rows[0]["handed_at"] == t("2025-09-03 09:00")
    assert rows[0]["step_deadline"] == t("2025-09-05 17:00")
    assert [r["result"] for r in rows] == ["early", "on time"]
    assert rows[1]["step_deadline"] == t("2025-09-05 17:00")
    assert rows[1]["step_ended_at"] == t("2025-09-05 15:00")


def test_step_deadline_skips_holidays() -> None:
    b = DossierBuilder("C2", "2025-08-29 09:00", rule_set="R-restart")  # Fri; Mon-Tue off
    b.handover("2025-08-29 10:00", "h-1", "appraisal", budget=(1, "working_days"))
    b.handover("2025-09-03 16:00", "h-2", "approval")
    first = sheet(b)[0]
    assert first["step_deadline"] == t("2025-09-03 17:00")
    assert first["result"] == "on time"


def test_make_up_saturday_is_part_of_the_step_budget() -> None:
    b = DossierBuilder("C3", "2025-04-25 08:00", rule_set="R-pause")
    b.handover("2025-04-25 10:00", "h-1", "appraisal", budget=(1, "working_days"))
    b.handover("2025-04-28 09:00", "h-2", "approval")
    first = sheet(b)[0]
    assert first["step_deadline"] == t("2025-04-26 17:00")  # the make-up Saturday
    assert first["result"] == "late"


def test_clock_pause_inside_a_step_extends_its_deadline() -> None:
    b = DossierBuilder("C4", "2025-09-03 08:00", rule_set="R-restart")
    b.handover("2025-09-03 10:00", "h-1", "appraisal", budget=(1, "working_days"))
    b.pause("2025-09-04 07:30").resume("2025-09-05 07:30")
    b.handover("2025-09-05 15:00", "h-2", "approval")
    first = sheet(b)[0]
    assert first["step_deadline"] == t("2025-09-05 17:00")
    assert first["result"] == "on time"
    assert first["step_working_s"] == int(10.5 * 3600)


def test_supplement_wait_inside_a_step_is_not_held_against_it() -> None:
    b = DossierBuilder("C5", "2025-09-03 09:00", rule_set="R-restart")
    b.handover("2025-09-03 10:00", "h-1", "appraisal", budget=(1, "working_days"))
    b.supplement_requested("2025-09-04 10:00").supplement_received("2025-09-08 10:00")
    b.handover("2025-09-09 10:00", "h-2", "approval", budget=(1, "working_days"))
    b.result("2025-09-10 16:00")
    rows = sheet(b)
    assert rows[0]["step_deadline"] == t("2025-09-08 17:00")  # Thu 17:00 + 15 h waited
    assert rows[0]["step_working_s"] == 15 * 3600
    assert [r["result"] for r in rows] == ["late", "on time"]


def test_notes_name_custody_gaps_back_and_forth_and_transfers() -> None:
    b = DossierBuilder("C6", "2025-09-03 08:00", rule_set="R-restart")
    b.handover("2025-09-03 09:00", "h-1", "appraisal", acknowledged=False)
    b.handover("2025-09-03 10:00", "h-2", "check", note="urgent")
    b.handover("2025-09-03 11:00", "h-1", "appraisal")
    b.transfer("2025-09-03 14:00", "SO-XD", "opinion", budget=(2, "working_days"))
    rows = sheet(b)
    assert "custody gap" in rows[0]["note"]
    assert rows[1]["note"].endswith("urgent")
    assert "returned to the previous holder" in rows[2]["note"]
    assert rows[3]["from_official"] == "h-1" and rows[3]["to_agency"] == "SO-XD"
    assert "inter-agency transfer" in rows[3]["note"]
    assert rows[3]["result"] is None and rows[3]["step_ended_at"] is None  # still running


def test_step_without_budget_is_judged_against_the_dossier_deadline() -> None:
    b = DossierBuilder("C7", "2025-09-03 08:00", rule_set="R-restart")
    b.handover("2025-09-03 09:00", "h-1", "appraisal")
    b.result("2025-09-09 09:00")
    (row,) = sheet(b)
    assert row["step_deadline"] == t("2025-09-08 17:00")
    assert row["result"] == "late"
    assert "no step budget" in row["note"]


def test_step_completed_ends_the_step() -> None:
    b = DossierBuilder("C8", "2025-09-03 08:00", rule_set="R-restart")
    b.handover("2025-09-03 09:00", "h-1", "appraisal", budget=(2, "working_days"))
    b.completed("2025-09-03 11:00", "appraisal")
    b.handover("2025-09-10 09:00", "h-2", "approval")
    first = sheet(b)[0]
    assert first["step_ended_at"] == t("2025-09-03 11:00")
    assert first["result"] == "early"


def test_audit_trail_has_one_row_per_event_with_step_time_and_overrun() -> None:
    b = DossierBuilder("T1", "2025-09-03 08:00", rule_set="R-restart")
    b.handover("2025-09-03 09:00", "h-1", "appraisal", budget=(1, "working_days"))
    b._add(
        "StepCompleted",
        "2025-09-05 10:00",
        {"step": "appraisal"},
        recorded="2025-09-06 09:00",
    )
    b.handover("2025-09-05 11:00", "h-2", "approval")
    rows = audit_trail.rows(recorded(b.envelopes), RULES)
    assert [r["type"] for r in rows] == [
        "DossierReceived",
        "HandedOver",
        "StepCompleted",
        "HandedOver",
    ]
    assert rows[1]["step"] == "intake" and rows[1]["step_working_s"] == 3600
    done = rows[2]
    assert done["step"] == "appraisal" and done["actor"] == "h-1" and done["agency"] == "SO-TNMT"
    assert done["occurred_at"] == t("2025-09-05 10:00")
    assert done["recorded_at"] == t("2025-09-06 09:00")
    assert done["step_working_s"] == 16 * 3600  # Wed 6 h, Thu 7.5 h, Fri 2.5 h
    assert done["over_allotment"] is True  # budget: 1 working day (Thu 17:00)
    assert rows[0]["over_allotment"] is None


def test_workload_counts_open_and_overdue_per_holder_as_of_now() -> None:
    a = DossierBuilder("W1", "2025-09-03 08:00", rule_set="R-restart")
    a.handover("2025-09-03 09:00", "h-1", "appraisal")
    b = DossierBuilder("W2", "2025-09-05 08:00", rule_set="R-restart")
    b.handover("2025-09-05 09:00", "h-1", "appraisal")
    c = DossierBuilder("W3", "2025-09-03 08:00", rule_set="R-restart")
    c.handover("2025-09-03 09:00", "h-2", "appraisal").result("2025-09-04 09:00")
    d = DossierBuilder("W4", "2025-09-03 08:00", rule_set="R-restart")
    d.handover("2025-09-03 09:00", "h-2", "appraisal").supplement_requested("2025-09-03 10:00")
    e = DossierBuilder("W5", "2025-09-03 08:00", rule_set="R-restart")
    e.handover("2025-09-03 09:00", "h-3", "appraisal").withdrawn("2025-09-03 10:00")
    recs = recorded(a.envelopes + b.envelopes + c.envelopes + d.envelopes + e.envelopes)
    w: workload.Workload = {}
    for r in recs:
        w = workload.evolve(w, r)
    now = datetime.fromisoformat(t("2025-09-09 09:00"))
    rows = workload.of_facts(w, RULES, now)
    assert [(r["official"], r["open_held"], r["overdue_held"]) for r in rows] == [
        ("h-1", 2, 1),  # W1 due 8 Sep (overdue), W2 due 10 Sep
        ("h-2", 2, 0),  # resolved, and waiting for a supplement: no clock running
    ]
    earlier = workload.of_facts(w, RULES, datetime.fromisoformat(t("2025-09-08 16:00")))
    assert earlier[0]["overdue_held"] == 0


def test_hand_back_to_the_desk_after_the_result_runs_until_the_return() -> None:
    b = DossierBuilder("C-ret", "2025-09-03 08:00", rule_set="R-restart", receiver="rc-1")
    b.handover("2025-09-03 09:00", "h-1", "appraisal", budget=(2, "working_days"))
    b.result("2025-09-04 10:00")
    b.handover("2025-09-04 11:00", "rc-1", "return", budget=(1, "working_days"))
    b.returned("2025-09-05 09:00")
    rows = sheet(b)
    assert rows[0]["step_ended_at"] == t("2025-09-04 10:00")
    assert rows[1]["handed_at"] == t("2025-09-04 11:00")
    assert rows[1]["step_ended_at"] == t("2025-09-05 09:00")  # not the earlier result
    assert rows[1]["result"] == "on time"
    assert rows[1]["step_working_s"] > 0


def test_hand_back_after_the_result_with_no_return_yet_is_still_running() -> None:
    b = DossierBuilder("C-run", "2025-09-03 08:00", rule_set="R-restart", receiver="rc-1")
    b.handover("2025-09-03 09:00", "h-1", "appraisal", budget=(2, "working_days"))
    b.result("2025-09-04 10:00")
    b.handover("2025-09-04 11:00", "rc-1", "return", budget=(1, "working_days"))
    last = sheet(b)[-1]
    assert last["step_ended_at"] is None and last["result"] is None
