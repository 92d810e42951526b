"""Conduct signals (brief §8.7, 8.8, 8.10-8.12): superseded version, back-dating, refusal
without reason, off-duty receipt, online to paper."""

from __future__ import annotations

from ledger.domain.events import Recorded
from projections import state
from streams.signals import Detectors
from tests.signal_cases import (
    PACKAGED,
    TEST_RULES,
    catalog,
    dossier,
    drive,
    event,
    found,
    kinds,
    request,
    rules_with,
    t,
)

# --- superseded_procedure ----------------------------------------------------------------


def test_a_receipt_under_an_expired_version() -> None:
    old = dossier("V1", "2025-09-03 09:00", procedure="9.000001", version="1")
    new = dossier("V2", "2025-09-03 09:00", procedure="9.000001", version="2")
    before = dossier("V3", "2025-06-30 16:00", procedure="9.000001", version="1")
    unknown = dossier("V4", "2025-09-03 09:00", procedure="7.777777", version="9")
    d = drive(old, new, before, unknown, cat=catalog())
    (s,) = found(d, "V1", "superseded_procedure")
    assert s["params"]["in_force"] == "2" and s["params"]["receipt_day"] == "2025-09-03"
    for did in ("V2", "V3", "V4"):
        assert "superseded_procedure" not in kinds(d, did)


def test_a_version_the_catalog_does_not_have_is_judged_by_publication() -> None:
    published = dossier(
        "V5", "2025-09-03 09:00", procedure="9.000002", version="7", rule_set="R-pause"
    )
    unpublished = dossier(
        "V7", "2018-06-20 09:00", procedure="9.000002", version="7", rule_set="R-restart"
    )
    d = drive(published, unpublished, rules=TEST_RULES, cat=catalog())
    assert "superseded_procedure" not in kinds(d, "V5")
    (s,) = found(d, "V7", "superseded_procedure")
    assert s["params"]["why"] == "procedure not published"


# --- backdated_event ---------------------------------------------------------------------


def test_paper_recorded_more_than_a_working_day_late() -> None:
    b = dossier("B1", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    event(
        b,
        "StepCompleted",
        "2025-09-04 09:00",
        {"step": "appraisal"},
        recorded_at="2025-09-05 11:00",
    )
    ok = dossier("B2", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    event(
        ok,
        "StepCompleted",
        "2025-09-04 16:00",
        {"step": "appraisal"},
        recorded_at="2025-09-05 15:00",
    )
    d = drive(b, ok)
    (s,) = found(d, "B1", "backdated_event")
    assert s["event_ids"] == [b.envelopes[-1]["event_id"]] and s["severity"] == "warning"
    assert "backdated_event" not in kinds(d, "B2")  # over a night: 6h30 of office time


def test_online_records_within_fifteen_minutes() -> None:
    late = dossier("B3", "2025-09-03 09:00", channel="online")
    event(
        late,
        "StepCompleted",
        "2025-09-03 10:00",
        {"step": "intake"},
        recorded_at="2025-09-03 10:20",
    )
    ok = dossier("B4", "2025-09-03 09:00", channel="online")
    event(
        ok, "StepCompleted", "2025-09-03 10:00", {"step": "intake"}, recorded_at="2025-09-03 10:10"
    )
    d = drive(late, ok)
    assert "backdated_event" in kinds(d, "B3")
    assert "backdated_event" not in kinds(d, "B4")


def test_a_result_claimed_before_the_due_but_recorded_after_it_is_critical() -> None:
    b = dossier("B5", "2025-09-03 09:00")  # due Mon 8 Sep
    event(b, "ResultIssued", "2025-09-08 16:00", {"decision": "approved", "reason": "ok"},
          actor=("ld-1", "approver", "SO-TNMT"), recorded_at="2025-09-10 16:00")  # fmt: skip
    (s,) = found(drive(b), "B5", "backdated_event")
    assert s["severity"] == "critical" and s["params"]["due_at"] == t("2025-09-08 17:00")


def test_occurred_at_going_backwards() -> None:
    b = dossier("B6", "2025-09-03 09:00").handover("2025-09-03 14:00", "cv-1", "appraisal")
    b.completed("2025-09-03 11:00", "intake")
    (s,) = found(drive(b), "B6", "backdated_event")
    assert s["params"]["why"] == "occurred_at not monotonic"


# --- refusal_without_reason ----------------------------------------------------------------


def test_a_refusal_needs_a_reason() -> None:
    curt = dossier("RF1", "2025-09-03 09:00").handover("2025-09-03 10:00", "ld-1", "approval")
    event(curt, "ResultIssued", "2025-09-04 10:00", {"decision": "refused"})
    blank = dossier("RF2", "2025-09-03 09:00").handover("2025-09-03 10:00", "ld-1", "approval")
    event(blank, "ResultIssued", "2025-09-04 10:00", {"decision": "refused", "reason": "  "})
    ok = dossier("RF3", "2025-09-03 09:00").handover("2025-09-03 10:00", "ld-1", "approval")
    event(ok, "ResultIssued", "2025-09-04 10:00", {"decision": "refused", "reason": "thiếu"})
    d = drive(curt, blank, ok)
    assert "refusal_without_reason" in kinds(d, "RF1")
    assert "refusal_without_reason" in kinds(d, "RF2")
    assert "refusal_without_reason" not in kinds(d, "RF3")


# --- off_duty_receipt ------------------------------------------------------------------------


def test_receipt_on_a_sunday_or_a_public_holiday() -> None:
    sunday = dossier("OD1", "2025-09-07 09:00")
    holiday = dossier("OD2", "2025-09-02 09:00")  # National Day
    weekday = dossier("OD3", "2025-09-03 09:00")
    d = drive(sunday, holiday, weekday)
    assert "off_duty_receipt" in kinds(d, "OD1")
    assert "off_duty_receipt" in kinds(d, "OD2")
    assert "off_duty_receipt" not in kinds(d, "OD3")


def test_a_make_up_saturday_is_a_working_day() -> None:
    worked = dossier("OD4", "2025-04-26 09:00", rule_set="R-pause")  # make-up Saturday
    swapped = dossier("OD5", "2025-05-02 09:00", rule_set="R-pause")  # Friday swapped off
    d = drive(worked, swapped, rules=TEST_RULES)
    assert "off_duty_receipt" not in kinds(d, "OD4")
    assert "off_duty_receipt" in kinds(d, "OD5")


def test_saturday_reception_when_the_rule_set_says_so() -> None:
    b = dossier("OD6", "2025-09-06 09:00", rule_set="T")
    assert "off_duty_receipt" in kinds(drive(b, rules=rules_with()), "OD6")
    assert "off_duty_receipt" not in kinds(
        drive(b, rules=rules_with(saturday_reception=True)), "OD6"
    )


def test_receipt_outside_the_sectors_duty_weekdays() -> None:
    rules = rules_with(duty_schedules={"SO-YT": [0, 2, 4]})  # Health: Mon/Wed/Fri
    tuesday = dossier("OD7", "2025-09-09 09:00", rule_set="T", agency="SO-YT")
    wednesday = dossier("OD8", "2025-09-10 09:00", rule_set="T", agency="SO-YT")
    other = dossier("OD9", "2025-09-09 09:00", rule_set="T", agency="SO-XD")
    d = drive(tuesday, wednesday, other, rules=rules)
    (s,) = found(d, "OD7", "off_duty_receipt")
    assert s["params"]["why"] == "outside the duty weekdays"
    assert "off_duty_receipt" not in kinds(d, "OD8")
    assert "off_duty_receipt" not in kinds(d, "OD9")


def test_staff_handling_on_a_day_off() -> None:
    b = dossier("OD10", "2025-09-05 09:00").handover("2025-09-06 10:00", "cv-1", "appraisal")
    (s,) = found(drive(b), "OD10", "off_duty_receipt")
    assert s["params"]["why"] == "handling on a non-working day"


# --- online_to_paper --------------------------------------------------------------------------


def _online(did: str, day: str, applicant: str, procedure: str = "1.004227"):
    b = dossier(did, f"{day} 09:00", channel="online", applicant_id=applicant, procedure=procedure)
    return request(b, f"{day} 10:00", ["DON"])


def test_filed_in_person_after_an_online_setback() -> None:
    online = _online("OP1", "2025-09-03", "079000000001")
    paper = dossier("OP2", "2025-09-10 09:00", applicant_id="079000000001")
    d = drive(online, paper)
    (s,) = found(d, "OP2", "online_to_paper")
    assert s["event_ids"] == [online.envelopes[1]["event_id"], paper.envelopes[0]["event_id"]]
    assert "online_to_paper" not in kinds(d, "OP1")


def test_not_after_the_window_nor_for_another_procedure_or_applicant() -> None:
    online = _online("OP3", "2025-09-03", "079000000002")
    too_late = dossier("OP4", "2025-10-06 09:00", applicant_id="079000000002")  # 33 days
    other_proc = dossier("OP5", "2025-09-10 09:00", applicant_id="079000000002", procedure="2.1")
    other_person = dossier("OP6", "2025-09-10 09:00", applicant_id="079000000003")
    postal = dossier("OP7", "2025-09-10 09:00", applicant_id="079000000002", channel="postal")
    d = drive(online, too_late, other_proc, other_person, postal)
    assert not found(d, kind="online_to_paper")


def test_an_online_refusal_is_a_setback_too() -> None:
    online = dossier("OP8", "2025-09-03 09:00", channel="online", applicant_id="079000000004")
    event(online, "ResultIssued", "2025-09-04 10:00", {"decision": "refused", "reason": "nộp giấy"})
    paper = dossier("OP9", "2025-09-05 09:00", applicant_id="079000000004")
    assert "online_to_paper" in kinds(drive(online, paper), "OP9")


def test_an_online_dossier_returned_on_paper() -> None:
    b = dossier("OP10", "2025-09-03 09:00", channel="online").result("2025-09-04 10:00")
    b.returned("2025-09-05 10:00", channel="direct")
    ok = dossier("OP11", "2025-09-03 09:00", channel="online").result("2025-09-04 10:00")
    ok.returned("2025-09-05 10:00", channel="online")
    d = drive(b, ok)
    assert "online_to_paper" in kinds(d, "OP10")
    assert "online_to_paper" not in kinds(d, "OP11")


def test_the_packaged_catalog_is_the_default() -> None:
    b = dossier("V6", "2025-09-03 09:00", procedure="1.000016", version="1")  # to 2023-12-31
    facts = state.evolve_into({}, 1, b.envelopes[0])
    sigs, _ = Detectors(PACKAGED).on_event(
        {}, facts, Recorded(1, 1, b.envelopes[0]), lambda now: state.view(facts, PACKAGED, now)
    )
    assert "superseded_procedure" in {s["kind"] for s in sigs}
