"""The ledger writes stored events directly; they must be exactly what the
eventsourcing mapper would write for the ``Dossier`` aggregate's events."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.application import _DOSSIER_TOPIC, Dossier
from ledger.bootstrap import open_ledger
from ledger.settings import Settings


def test_direct_stored_events_equal_the_library_mapping(tmp_path) -> None:
    ledger = open_ledger(Settings.from_env(tmp_path))
    ts = datetime(2025, 9, 1, 1, 2, 3, 456789, tzinfo=UTC)
    tag = {"_type_": "datetime_iso", "_data_": ts.isoformat()}
    env = {"event_id": "x", "data": {"n": 1, "f": 2.5, "s": "Hồ sơ"}}
    opened = Dossier.Opened(
        originator_id="d",
        originator_version=1,
        timestamp=ts,
        originator_topic=_DOSSIER_TOPIC,
        envelope=env,
    )
    recorded = Dossier.Recorded(originator_id="d", originator_version=2, timestamp=ts, envelope=env)
    assert ledger._stored_event("d", 1, env, tag) == ledger.mapper.to_stored_event(opened)
    assert ledger._stored_event("d", 2, env, tag) == ledger.mapper.to_stored_event(recorded)


def test_appended_events_read_back_through_the_repository(tmp_path) -> None:
    import random

    from simulator.factories import dossier_life

    ledger = open_ledger(Settings.from_env(tmp_path))
    events = dossier_life("000.00.12.H41-250901-0001", random.Random(1), steps=3)
    for env in events:
        ledger.append(env)
    dossier = ledger.get("000.00.12.H41-250901-0001")
    assert dossier.version == len(events)
    assert dossier.state.events == len(events)
