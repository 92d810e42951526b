"""Custody signals (brief §8.5, 8.6, 8.9; §4.4): forwarding, idle holdings, ping-pong,
separation of duties."""

from __future__ import annotations

from streams.signals import SignalConfig
from tests.signal_cases import dossier, drive, found, kinds, received, request, rules_with, t

# --- late_forwarding: the 15:00 rule plus a grace of 2 working hours -----------------


def test_paper_received_before_the_cutoff_goes_the_same_day_plus_grace() -> None:
    ok = dossier("F1", "2025-09-03 10:00").handover("2025-09-04 09:00", "cv-1", "appraisal")
    late = dossier("F2", "2025-09-03 10:00").handover("2025-09-04 10:00", "cv-1", "appraisal")
    d = drive(ok, late)
    assert "late_forwarding" not in kinds(d, "F1")  # close 17:00 + 2 wh = Thu 09:30
    (s,) = found(d, "F2", "late_forwarding")
    assert s["params"]["limit"] == t("2025-09-04 09:30")
    assert s["detected_at"] == "2025-09-04T09:30:00.000001+07:00"  # when it ran out


def test_paper_received_after_the_cutoff_goes_at_the_next_opening() -> None:
    ok = dossier("F3", "2025-09-03 15:30").handover("2025-09-04 09:29", "cv-1", "appraisal")
    late = dossier("F4", "2025-09-03 15:30").handover("2025-09-04 13:40", "cv-1", "appraisal")
    d = drive(ok, late)
    assert "late_forwarding" not in kinds(d, "F3")
    assert "late_forwarding" in kinds(d, "F4")


def test_online_goes_at_once() -> None:
    ok = dossier("F5", "2025-09-03 08:00", channel="online")
    ok.handover("2025-09-03 10:00", "cv-1", "appraisal")
    late = dossier("F6", "2025-09-03 08:00", channel="online")
    late.handover("2025-09-03 10:30", "cv-1", "appraisal")
    d = drive(ok, late)
    assert "late_forwarding" not in kinds(d, "F5")
    assert "late_forwarding" in kinds(d, "F6")


def test_forwarding_over_a_holiday() -> None:
    # Fri 29 Aug after 15:00; Mon 1 and Tue 2 Sep are days off: next opening Wed 3 Sep
    b = dossier("F7", "2025-08-29 16:00").handover("2025-09-03 09:00", "cv-1", "appraisal")
    assert "late_forwarding" not in kinds(drive(b), "F7")


def test_a_dossier_never_forwarded_is_flagged_when_the_limit_passes() -> None:
    b = dossier("F8", "2025-09-03 10:00")
    assert "late_forwarding" not in kinds(drive(b, now="2025-09-04 09:30"), "F8")
    (s,) = found(drive(b, now="2025-09-04 12:00"), "F8", "late_forwarding")
    assert s["official_id"] == "rc-1"


def test_a_result_at_the_desk_needs_no_forwarding() -> None:
    b = dossier("F9", "2025-09-03 10:00").result("2025-09-03 11:00")
    assert "late_forwarding" not in kinds(drive(b, now="2025-09-10 12:00"), "F9")


# --- idle_beyond_allotment -----------------------------------------------------------


def test_a_holder_past_the_step_budget_is_flagged_when_it_runs_out() -> None:
    b = dossier("I1", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 09:00", "cv-1", "appraisal", budget=(1, "working_days"))
    b.completed("2025-09-04 10:00", "appraisal")
    (s,) = found(drive(b), "I1", "idle_beyond_allotment")
    assert s["detected_at"] == "2025-09-04T09:00:00.000001+07:00"  # 7h30 of office time later
    assert s["official_id"] == "cv-1" and s["params"]["budget_source"] == "step_budget"


def test_a_holder_within_the_budget_is_not_flagged() -> None:
    b = dossier("I2", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 09:00", "cv-1", "appraisal", budget=(1, "working_days"))
    b.completed("2025-09-04 08:30", "appraisal")
    assert "idle_beyond_allotment" not in kinds(drive(b), "I2")


def test_a_holding_with_no_further_event_fires_on_the_timer() -> None:
    b = dossier("I3", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 09:00", "cv-1", "appraisal", budget=(1, "working_days"))
    assert "idle_beyond_allotment" in kinds(drive(b, now="2025-09-05 09:00"), "I3")


def test_supplement_waits_do_not_count_against_the_holder() -> None:
    b = dossier("I4", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 09:00", "cv-1", "appraisal", budget=(1, "working_days"))
    request(b, "2025-09-03 10:00", ["DON"])
    received(b, "2025-09-05 10:00", ["DON"])
    b.completed("2025-09-05 15:00", "appraisal")  # 1h + 3h30 of holding
    assert "idle_beyond_allotment" not in kinds(drive(b, now="2025-09-10 09:00"), "I4")


def test_days_off_do_not_count_against_the_holder() -> None:
    b = dossier("I5", "2025-08-29 09:00", allowance=(10, "working_days"))
    b.handover("2025-08-29 16:00", "cv-1", "appraisal", budget=(1, "working_days"))
    b.completed("2025-09-03 15:00", "appraisal")  # Fri 1h, (1-2 Sep off), Wed 5h30
    assert "idle_beyond_allotment" not in kinds(drive(b), "I5")


def test_a_consultation_step_by_another_body_does_not_end_the_holding() -> None:
    b = dossier("I6", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 09:00", "cv-1", "appraisal", budget=(1, "working_days"))
    b.transfer("2025-09-03 10:00", "SO-XD", "consult", budget=(3, "working_days"))
    b._add(
        "StepCompleted", "2025-09-03 11:00", {"step": "consultation"}, ("xd-1", "handler", "SO-XD")
    )
    b._add(
        "StepCompleted", "2025-09-05 09:00", {"step": "appraisal"}, ("cv-1", "appraiser", "SO-TNMT")
    )
    sig = found(drive(b), "I6", "idle_beyond_allotment")
    assert [s["official_id"] for s in sig] == ["cv-1"]


def test_a_handover_without_a_budget_is_judged_against_the_allowance() -> None:
    b = dossier("I7", "2025-09-03 09:00", allowance=(2, "working_days"))
    b.handover("2025-09-03 09:00", "cv-1", "appraisal")
    b.handover("2025-09-05 10:00", "ld-1", "approval")  # 2 working days and 1h later
    (s,) = found(drive(b), "I7", "idle_beyond_allotment")
    assert s["params"]["budget_source"] == "allowance"


def test_calendar_day_budgets_count_elapsed_time() -> None:
    b = dossier("I8", "2025-09-05 09:00", allowance=(10, "calendar_days"))
    b.handover("2025-09-05 16:00", "cv-1", "appraisal", budget=(2, "calendar_days"))
    b.completed("2025-09-08 08:00", "appraisal")  # Fri 16:00 -> Mon 08:00: 2 days 16h
    assert "idle_beyond_allotment" in kinds(drive(b), "I8")


# --- ping_pong -------------------------------------------------------------------------


def test_two_round_trips_between_the_same_pair() -> None:
    b = dossier("PP1", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 10:00", "cv-1", "appraisal")
    for day, who in zip((4, 5, 8, 9), ["cv-2", "cv-1", "cv-2", "cv-1"], strict=True):
        b.handover(f"2025-09-0{day} 10:00", who, "appraisal")
    sig = found(drive(b), "PP1", "ping_pong")
    assert len(sig) == 1 and sig[0]["detected_at"] == t("2025-09-09 10:00")
    assert sig[0]["params"]["round_trips"] == 2


def test_one_round_trip_is_not_ping_pong() -> None:
    b = dossier("PP2", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 10:00", "cv-1", "appraisal")
    b.handover("2025-09-04 10:00", "cv-2", "appraisal").handover(
        "2025-09-04 15:00", "cv-1", "appraisal"
    )
    b.handover("2025-09-05 10:00", "ld-1", "approval").handover(
        "2025-09-05 15:00", "rc-2", "return"
    )
    assert "ping_pong" not in kinds(drive(b), "PP2")


def test_too_many_handovers_for_the_route() -> None:
    b = dossier("PP3", "2025-09-03 09:00", allowance=(10, "working_days"))
    for i in range(7):  # a chain through seven officials: route 3 + 3 extra exceeded
        b.handover(f"2025-09-04 {8 + i:02d}:15", f"cv-{i}", "appraisal")
    (s,) = found(drive(b), "PP3", "ping_pong")
    assert s["params"]["handovers"] == 7 and s["params"]["round_trips"] == 0


# --- same_official_receive_approve -----------------------------------------------------


def test_the_receiver_who_decides() -> None:
    b = dossier("SD1", "2025-09-03 09:00").result("2025-09-04 10:00")  # rc-1 both
    (s,) = found(drive(b), "SD1", "same_official_receive_approve")
    assert s["official_id"] == "rc-1" and s["params"]["also"] == ["received"]


def test_the_appraiser_who_approves() -> None:
    b = dossier("SD2", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    b.completed("2025-09-04 10:00", "appraisal").result("2025-09-04 11:00")
    (s,) = found(drive(b), "SD2", "same_official_receive_approve")
    assert s["params"]["also"] == ["appraised"]


def test_holding_the_file_is_not_appraising_it() -> None:
    b = dossier("SD5", "2025-09-03 09:00").handover("2025-09-03 10:00", "ld-1", "appraisal")
    b.result("2025-09-04 11:00")  # handed to the leader, who decides: no appraisal by him
    assert "same_official_receive_approve" not in kinds(drive(b), "SD5")


def test_separate_officials_are_lawful() -> None:
    b = dossier("SD3", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    b.handover("2025-09-04 10:00", "ld-1", "approval").result("2025-09-04 11:00")
    assert "same_official_receive_approve" not in kinds(drive(b), "SD3")


def test_no_separation_required_or_delegated_desk() -> None:
    b = dossier("SD4", "2025-09-03 09:00", rule_set="T").result("2025-09-04 10:00")
    rules = rules_with(separation_of_duties=False)
    assert "same_official_receive_approve" not in kinds(drive(b, rules=rules), "SD4")
    assert "same_official_receive_approve" in kinds(drive(b, rules=rules_with()), "SD4")
    delegated = SignalConfig(delegated=frozenset({"1.004227"}))
    d = drive(b, rules=rules_with(), config=delegated, now="2025-09-10 00:00")
    assert "same_official_receive_approve" not in kinds(d, "SD4")
    assert "late_forwarding" not in kinds(d, "SD4")  # the desk decides: nothing to forward


def test_a_clock_pause_stops_the_holders_budget_until_it_resumes() -> None:
    b = dossier("I9", "2025-09-03 09:00", allowance=(10, "working_days"))
    b.handover("2025-09-03 09:00", "cv-1", "appraisal", budget=(1, "working_days"))
    b.pause("2025-09-03 10:00").resume("2025-09-08 10:00")  # 1h used before the pause
    assert "idle_beyond_allotment" not in kinds(drive(b, now="2025-09-08 16:00"), "I9")
    (s,) = found(drive(b, now="2025-09-09 12:00"), "I9", "idle_beyond_allotment")
    assert s["detected_at"] == "2025-09-09T09:00:00.000001+07:00"  # 1h + Mon 10:00 -> Tue 09:00
