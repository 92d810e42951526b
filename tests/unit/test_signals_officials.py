"""Official-level alerts (brief §8 items 10 and 13): refusal bursts and harassment."""

from __future__ import annotations

from streams.signals import SignalConfig
from tests.signal_cases import PACKAGED, dossier, drive, event


def _decided(did: str, day: str, approver: str, refused: bool):
    b = dossier(did, f"{day} 08:00").handover(f"{day} 08:30", approver, "approval")
    data = {"decision": "refused", "reason": "không đủ điều kiện"} if refused else {
        "decision": "approved", "reason": "ok"}  # fmt: skip
    return event(b, "ResultIssued", f"{day} 10:00", data, actor=(approver, "approver", b.agency))


DAYS = [f"2025-09-{d:02d}" for d in (3, 4, 5, 8, 9, 10, 11, 12, 15, 16, 17, 18)]


def _province(refusals: dict[str, int]) -> list:
    """Eight approvers with 12 results each; ``refusals`` of them refused per approver."""
    out = []
    for k in range(8):
        who = f"ld-{k}"
        for i, day in enumerate(DAYS):
            out.append(_decided(f"D-{k}-{i}", day, who, i < refusals.get(who, 1 if k % 2 else 0)))
    return out


def test_an_official_refusing_far_more_than_peers_raises_a_burst() -> None:
    d = drive(*_province({"ld-3": 9}), now="2025-09-20 12:00")
    bursts = [a for a in d.alerts if a["kind"] == "refusal_burst"]
    assert [a["official_id"] for a in bursts] == ["ld-3"]  # once, though every later day sees it
    a = bursts[0]
    assert a["params"]["refusals"] == 9 and a["params"]["z"] > 3
    assert a["recipients"] == ["head:SO-TNMT", "inspector:SO-TNMT"] and a["replayed"] is False


def test_no_burst_among_similar_officials_or_below_the_minimum_volume() -> None:
    d = drive(*_province({}), now="2025-09-20 12:00")
    assert not [a for a in d.alerts if a["kind"] == "refusal_burst"]
    few = SignalConfig(burst_min_volume=13)
    d = drive(*_province({"ld-3": 9}), now="2025-09-20 12:00", config=few)
    assert not [a for a in d.alerts if a["kind"] == "refusal_burst"]


def test_feedback_is_routed_to_the_officials_who_handled_the_dossier() -> None:
    b = dossier("H1", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    b.result("2025-09-04 10:00").returned("2025-09-05 10:00")
    event(b, "FeedbackGiven", "2025-09-05 11:00", {"rating": 1}, actor=("ap", "applicant", "X"))
    d = drive(b, now="2025-09-06 00:00")
    rows = d.official_state["f"]["2025-09-05"]
    assert rows == {"rc-1": [1, 1, 0], "cv-1": [1, 1, 0]}


def _feedback(official: str, day: str, negative: int, total: int, agency: str = "A") -> list:
    return [
        {
            "t": "fb",
            "officials": [official],
            "agency": agency,
            "day": day,
            "negative": i < negative,
            "complaint": i == 0 and negative > 0,
        }  # fmt: skip
        for i in range(total)
    ]


def test_harassment_above_the_peer_median_plus_k_mad() -> None:
    from streams.signals import OfficialAlerts

    alerts = OfficialAlerts(PACKAGED)
    st: dict = {}
    for k in range(7):
        for fact in _feedback(f"cv-{k}", "2025-09-03", k % 2, 10):
            alerts.step(st, fact)
    for fact in _feedback("cv-bad", "2025-09-04", 6, 10):
        alerts.step(st, fact)
    out = alerts.on_day_final(st, "2025-09-04", replayed=True)
    assert [(a["kind"], a["official_id"]) for a in out] == [("harassment", "cv-bad")]
    assert out[0]["replayed"] is True and out[0]["params"]["negative"] == 6
    assert alerts.on_day_final(st, "2025-09-05", replayed=False) == []  # once per window


def test_no_harassment_alert_without_enough_peers_or_feedback() -> None:
    from streams.signals import OfficialAlerts

    alerts = OfficialAlerts(PACKAGED)
    st: dict = {}
    for k in range(3):
        for fact in _feedback(f"cv-{k}", "2025-09-03", 0, 10):
            alerts.step(st, fact)
    for fact in _feedback("cv-bad", "2025-09-03", 4, 4):  # below the minimum of 5
        alerts.step(st, fact)
    assert alerts.on_day_final(st, "2025-09-03", replayed=False) == []


def test_a_late_withdrawal_counts_towards_the_holders_burst_figures() -> None:
    b = dossier("W1", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    b.withdrawn("2025-09-08 15:00")  # 3 working days: the last 20% of the allowance
    early = dossier("W2", "2025-09-03 09:00").handover("2025-09-03 10:00", "cv-1", "appraisal")
    early.withdrawn("2025-09-03 11:00")
    d = drive(b, early, now="2025-09-09 00:00")
    assert d.official_state["e"]["2025-09-08"]["cv-1"] == [1, 0, 1, 1]
    assert d.official_state["e"]["2025-09-03"]["cv-1"] == [1, 0, 1, 0]
