"""Supplement signals (brief §8.1-8.3): repeated requests, unlisted documents, late requests."""

from __future__ import annotations

from tests.signal_cases import (
    TEST_RULES,
    catalog,
    dossier,
    drive,
    found,
    kinds,
    received,
    request,
    t,
)

DOCS_V2 = ["9.000001.D01", "9.000001.D02", "9.000001.D03"]


def test_a_second_request_fires_when_it_is_made_not_at_the_end() -> None:
    b = dossier("S1", "2025-09-03 09:00", documents=["DON", "CCCD"]).handover(
        "2025-09-03 10:00", "cv-1", "appraisal"
    )
    request(b, "2025-09-04 09:00", ["DON"])
    received(b, "2025-09-05 09:00", ["DON"])
    request(b, "2025-09-08 09:00", ["CCCD"], stage="intake")
    sig = found(drive(b), "S1", "repeated_supplement")
    assert len(sig) == 1
    s = sig[0]
    assert s["detected_at"] == t("2025-09-08 09:00")  # the second request, not the end
    assert s["event_ids"] == [b.envelopes[2]["event_id"], b.envelopes[4]["event_id"]]
    assert s["params"]["requests"] == 2
    assert s["params"]["by_stage"] == {"appraisal": 1, "intake": 1}


def test_one_request_is_not_repeated() -> None:
    b = dossier("S2", "2025-09-03 09:00", documents=["DON", "CCCD"])
    request(b, "2025-09-04 09:00", ["DON"])
    received(b, "2025-09-05 09:00", ["DON"])
    b.result("2025-09-08 09:00")
    assert "repeated_supplement" not in kinds(drive(b), "S2")


def test_a_document_not_on_the_versions_list_is_unlisted() -> None:
    b = dossier("S3", "2025-09-03 09:00", procedure="9.000001", version="2", documents=DOCS_V2)
    request(b, "2025-09-04 09:00", ["9.000001.D01", "0.000000.X01"])
    sig = found(drive(b, cat=catalog()), "S3", "unlisted_document_requested")
    assert [s["params"]["documents"] for s in sig] == [["0.000000.X01"]]


def test_listed_documents_through_the_desk_are_lawful() -> None:
    b = dossier("S4", "2025-09-03 09:00", procedure="9.000001", version="2", documents=DOCS_V2)
    request(b, "2025-09-04 09:00", ["9.000001.D03"])
    received(b, "2025-09-05 09:00", ["9.000001.D03"])
    assert "unlisted_document_requested" not in kinds(drive(b, cat=catalog()), "S4")


def test_a_request_that_does_not_go_through_the_desk_is_flagged() -> None:
    b = dossier("S5", "2025-09-03 09:00", procedure="9.000001", version="2", documents=DOCS_V2)
    request(b, "2025-09-04 09:00", ["9.000001.D03"], role="appraiser", who="cv-9")
    (s,) = found(drive(b, cat=catalog()), "S5", "unlisted_document_requested")
    assert s["params"]["role"] == "appraiser" and s["official_id"] == "cv-9"


def test_a_retired_document_of_the_receipts_version_is_judged_by_that_version() -> None:
    b = dossier(
        "S6",
        "2025-06-02 09:00",
        procedure="9.000001",
        version="1",
        documents=["9.000001.D01", "9.000001.D02", "9.000001.R01"],
    )
    request(b, "2025-06-03 09:00", ["9.000001.R01"])
    request(b, "2025-06-04 09:00", ["9.000001.D03"])  # listed only from version 2
    sig = found(drive(b, cat=catalog()), "S6", "unlisted_document_requested")
    assert [s["params"]["documents"] for s in sig] == [["9.000001.D03"]]


def test_collected_at_receipt_beyond_the_list_is_unlisted() -> None:
    docs = [*DOCS_V2, "0.000000.X01"]
    b = dossier("S7", "2025-09-03 09:00", procedure="9.000001", version="2", documents=docs)
    (s,) = found(drive(b, cat=catalog()), "S7", "unlisted_document_requested")
    assert s["params"]["how"] == "collected at receipt"


def test_unknown_procedures_fall_back_to_the_receipts_documents() -> None:
    ok = dossier("S8", "2025-09-03 09:00", procedure="7.777777", documents=["DON", "CCCD"])
    request(ok, "2025-09-04 09:00", ["CCCD"])
    bad = dossier("S9", "2025-09-03 09:00", procedure="7.777777", documents=["DON", "CCCD"])
    request(bad, "2025-09-04 09:00", ["XAC-NHAN-TO-DAN-PHO"])
    d = drive(ok, bad, cat=catalog())
    assert "unlisted_document_requested" not in kinds(d, "S8")
    assert "unlisted_document_requested" in kinds(d, "S9")


def test_late_request_counts_working_days_around_holidays() -> None:
    # Fri 29 Aug 2025; 1-2 Sep off: 3 working days end Fri 5 Sep (naive counting: Wed 3)
    in_time = dossier("L1", "2025-08-29 10:00")
    request(in_time, "2025-09-05 16:00", ["DON"])
    late = dossier("L2", "2025-08-29 10:00")
    request(late, "2025-09-08 08:00", ["DON"])
    d = drive(in_time, late)
    assert "late_supplement_request" not in kinds(d, "L1")
    (s,) = found(d, "L2", "late_supplement_request")
    assert s["params"]["working_days_after_receipt"] == 4
    assert s["detected_at"] == t("2025-09-08 08:00")


def test_late_request_counts_a_make_up_saturday() -> None:
    # Thu 24 Apr 2025 (R-pause): Fri 25, Sat 26 (make-up), Mon 28 -> the window ends Mon 28
    in_time = dossier("L3", "2025-04-24 10:00", rule_set="R-pause")
    request(in_time, "2025-04-28 16:00", ["DON"])
    late = dossier("L4", "2025-04-24 10:00", rule_set="R-pause")
    request(late, "2025-04-29 08:00", ["DON"])
    d = drive(in_time, late, rules=TEST_RULES)
    assert "late_supplement_request" not in kinds(d, "L3")
    assert "late_supplement_request" in kinds(d, "L4")


def test_an_intake_request_is_not_an_appraisal_request() -> None:
    b = dossier("L5", "2025-09-03 09:00")
    request(b, "2025-09-10 09:00", ["DON"], stage="intake")
    assert "late_supplement_request" not in kinds(drive(b), "L5")


def test_a_sector_override_of_the_window() -> None:
    from streams.signals import SignalConfig

    b = dossier("L6", "2025-09-03 09:00")
    request(b, "2025-09-09 09:00", ["DON"])  # 4 working days after receipt
    assert "late_supplement_request" in kinds(drive(b), "L6")
    cfg = SignalConfig(supplement_window_overrides={"1.004227": "5wd"})
    assert "late_supplement_request" not in kinds(drive(b, config=cfg), "L6")
