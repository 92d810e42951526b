"""Apology signals (brief §8.4, §4.5-4.6): late without a timely apology, repeated apology."""

from __future__ import annotations

from tests.signal_cases import (
    TEST_RULES,
    dossier,
    drive,
    found,
    kinds,
    received,
    request,
    t,
)

# Wed 3 Sep 2025, 3 working days: due Mon 8 Sep 17:00; the apology lead (1 working
# day) makes Fri 5 Sep the last day for a timely apology.


def test_an_open_dossier_is_flagged_when_the_due_passes_with_no_further_event() -> None:
    b = dossier("A1", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    assert "late_without_apology" not in kinds(drive(b, now="2025-09-08 23:59"), "A1")
    (s,) = found(drive(b, now="2025-09-09 00:00"), "A1", "late_without_apology")
    assert s["detected_at"] == t("2025-09-09 00:00")  # the first overdue instant
    assert s["params"]["original_due_at"] == t("2025-09-08 17:00")
    assert s["official_id"] == "cv-1" and s["severity"] == "severe"


def test_a_late_result_without_apology_fires_once() -> None:
    b = dossier("A2", "2025-09-03 09:00").result("2025-09-10 09:00").returned("2025-09-11 09:00")
    sig = found(drive(b), "A2", "late_without_apology")
    assert len(sig) == 1 and sig[0]["detected_at"] == t("2025-09-09 00:00")


def test_a_result_on_the_due_date_is_on_time() -> None:
    b = dossier("A3", "2025-09-03 09:00").result("2025-09-08 16:30")
    assert "late_without_apology" not in kinds(drive(b, now="2025-09-20 00:00"), "A3")


def test_a_timely_apology_clears_a_late_dossier() -> None:
    b = dossier("A4", "2025-09-03 09:00").apology("2025-09-05 16:00", "2025-09-12 17:00")
    b.result("2025-09-11 10:00")
    assert "late_without_apology" not in kinds(drive(b), "A4")


def test_an_apology_on_the_due_day_is_too_late() -> None:
    b = dossier("A5", "2025-09-03 09:00").apology("2025-09-08 08:00", "2025-09-12 17:00")
    b.result("2025-09-11 10:00")
    (s,) = found(drive(b), "A5", "late_without_apology")
    assert s["params"]["late"] == 1 and s["severity"] == "warning"


def test_an_apology_without_a_reason_or_date_is_no_apology() -> None:
    no_reason = dossier("A6", "2025-09-03 09:00").apology(
        "2025-09-04 09:00", "2025-09-12 17:00", ""
    )
    no_reason.result("2025-09-11 10:00")
    no_date = dossier("A7", "2025-09-03 09:00").apology("2025-09-04 09:00", None)
    no_date.result("2025-09-11 10:00")
    d = drive(no_reason, no_date)
    for did in ("A6", "A7"):
        (s,) = found(d, did, "late_without_apology")
        assert s["params"]["invalid"] == 1


def test_restart_moves_the_due_from_the_complete_dossier() -> None:
    # restart (ND118): asked Thu 4, complete Wed 10 Sep -> due Mon 15 Sep 17:00
    b = dossier("R1", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    request(b, "2025-09-04 09:00", ["DON"])
    received(b, "2025-09-10 09:00", ["DON"])
    on_time = dossier("R2", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    request(on_time, "2025-09-04 09:00", ["DON"])
    received(on_time, "2025-09-10 09:00", ["DON"])
    on_time.result("2025-09-15 16:00")
    d = drive(b, on_time, now="2025-09-15 23:00")
    assert "late_without_apology" not in kinds(d, "R1")  # the old due (8 Sep) passed unseen
    assert "late_without_apology" not in kinds(d, "R2")
    (s,) = found(drive(b, now="2025-09-16 00:00"), "R1", "late_without_apology")
    assert s["params"]["original_due_at"] == t("2025-09-15 17:00")


def test_no_clock_runs_while_waiting_for_a_supplement_in_restart_mode() -> None:
    b = dossier("R3", "2025-09-03 09:00")
    request(b, "2025-09-04 09:00", ["DON"])
    assert "late_without_apology" not in kinds(drive(b, now="2025-10-30 00:00"), "R3")


def test_pause_mode_subtracts_the_wait() -> None:
    # R-pause (766): due Mon 8 Sep + the wait Thu 4 09:00 -> Tue 9 09:00 (3 working days)
    b = dossier("P1", "2025-09-03 09:00", rule_set="R-pause")
    request(b, "2025-09-04 09:00", ["DON"])
    received(b, "2025-09-09 09:00", ["DON"])
    b.result("2025-09-10 16:00")
    late = dossier("P2", "2025-09-03 09:00", rule_set="R-pause")
    request(late, "2025-09-04 09:00", ["DON"])
    received(late, "2025-09-09 09:00", ["DON"])
    late.result("2025-09-12 09:00")
    d = drive(b, late, rules=TEST_RULES)
    assert "late_without_apology" not in kinds(d, "P1")
    (s,) = found(d, "P2", "late_without_apology")
    assert s["params"]["original_due_at"] == t("2025-09-11 17:00")
    assert s["detected_at"] == t("2025-09-12 00:00")


def test_a_clock_pause_moves_the_due() -> None:
    b = dossier("P3", "2025-09-03 09:00").pause("2025-09-04 07:30").resume("2025-09-05 07:30")
    b.result("2025-09-09 10:00")  # due moved one working day: Tue 9 Sep
    assert "late_without_apology" not in kinds(drive(b), "P3")


def test_the_appointment_on_the_slip_is_the_due_of_record() -> None:
    b = dossier("P4", "2025-09-03 09:00", appointment_at="2025-09-05 17:00")
    b.result("2025-09-08 10:00")
    (s,) = found(drive(b), "P4", "late_without_apology")
    assert s["params"]["original_due_at"] == t("2025-09-05 17:00")


def test_a_second_apology_is_a_second_reschedule() -> None:
    once = dossier("AP1", "2025-09-03 09:00").apology("2025-09-05 09:00", "2025-09-10 17:00")
    twice = dossier("AP2", "2025-09-03 09:00").apology("2025-09-05 09:00", "2025-09-10 17:00")
    twice.apology("2025-09-10 09:00", "2025-09-15 17:00")
    d = drive(once, twice)
    assert "repeated_apology" not in kinds(d, "AP1")
    (s,) = found(d, "AP2", "repeated_apology")
    assert s["detected_at"] == t("2025-09-10 09:00") and len(s["event_ids"]) == 2


def test_the_reschedule_limit_comes_from_the_rule_set() -> None:
    from tests.signal_cases import rules_with

    b = dossier("AP3", "2025-09-03 09:00", rule_set="T")
    b.apology("2025-09-05 09:00", "2025-09-10 17:00").apology(
        "2025-09-09 09:00", "2025-09-12 17:00"
    )
    assert "repeated_apology" not in kinds(drive(b, rules=rules_with(reschedule_limit=2)), "AP3")
    assert "repeated_apology" in kinds(drive(b, rules=rules_with(reschedule_limit=1)), "AP3")


def test_late_withdrawal_ends_the_clock_past_the_due() -> None:
    b = dossier("W1", "2025-09-03 09:00").withdrawn("2025-09-10 09:00")
    (s,) = found(drive(b), "W1", "late_without_apology")
    assert s["detected_at"] == t("2025-09-09 00:00")
    assert s["params"]["ended"] is False  # the timer saw it first, before the withdrawal


def test_no_clock_runs_while_waiting_in_pause_mode_either() -> None:
    b = dossier("P5", "2025-09-03 09:00", rule_set="R-pause")
    request(b, "2025-09-04 09:00", ["DON"])
    assert "late_without_apology" not in kinds(drive(b, rules=TEST_RULES, now="2025-10-30"), "P5")


def test_a_request_after_the_due_comes_too_late_to_restart_it() -> None:
    # restart mode: the due (Mon 8 Sep) passed with the clock running; the late request
    # restarts the clock, but the breach was already complete
    b = dossier("R4", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    request(b, "2025-09-10 09:00", ["DON"])
    received(b, "2025-09-11 09:00", ["DON"])
    b.result("2025-09-12 09:00")
    (s,) = found(drive(b), "R4", "late_without_apology")
    assert s["detected_at"] == t("2025-09-09 00:00") and s["params"]["ended"] is False
