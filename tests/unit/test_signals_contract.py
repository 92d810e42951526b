"""The detectors under the dossier processor (``streams.dossier``) give the same signals,
with the same ids and instants, as under the in-memory driver: the contract holds."""

from __future__ import annotations

from datetime import datetime

from streams.dossier import DossierProcessor
from tests.projection_factories import recorded
from tests.signal_cases import PACKAGED, at, dossier, drive, received, request


def _cases():
    idle = dossier("C1", "2025-09-03 15:30", allowance=(5, "working_days"))
    idle.handover("2025-09-04 13:00", "cv-1", "appraisal", budget=(1, "working_days"))
    request(idle, "2025-09-05 09:00", ["DON"])
    received(idle, "2025-09-08 09:00", ["DON"])
    idle.completed("2025-09-10 09:00", "appraisal")
    request(idle, "2025-09-10 10:00", ["CCCD"])
    stuck = dossier("C2", "2025-09-03 09:00")  # no further event: timers only
    return [idle, stuck]


def test_processor_and_driver_agree() -> None:
    cases = _cases()
    expected = drive(*cases, now="2025-09-30 00:00").signals
    proc = DossierProcessor(PACKAGED)
    states: dict[str, dict] = {}
    got = []
    reference = at("2025-09-30 00:00")
    envs = sorted(
        (e for b in cases for e in b.envelopes),
        key=lambda e: datetime.fromisoformat(e["occurred_at"]),
    )
    for rec in recorded(envs):
        st, out = proc.apply(states.get(rec.dossier_id), rec, reference)
        states[rec.dossier_id] = st
        got.extend(e.value for e in out if e.kind == "signal")
    for st in states.values():
        got.extend(e.value for e in proc.fire(st, reference, reference) if e.kind == "signal")

    def key(s: dict) -> tuple:
        return (s["signal_id"], s["kind"], s["detected_at"], tuple(s["event_ids"]))

    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert {s["kind"] for s in expected} >= {
        "late_forwarding",
        "idle_beyond_allotment",
        "repeated_supplement",
        "late_without_apology",
    }
