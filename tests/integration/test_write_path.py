"""The ledger writes stored events directly; they must be exactly what the
eventsourcing mapper would write for the ``Dossier`` aggregate's events."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

from eventsourcing.utils import resolve_topic

from ledger.aggregate import DOSSIER_TOPIC, OPENED_TOPIC, RECORDED_TOPIC, Dossier
from ledger.audit import verify
from ledger.bootstrap import open_ledger
from ledger.settings import Settings
from simulator.factories import dossier_life

HISTORIC = {
    Dossier: "ledger.application:Dossier",
    Dossier.Opened: "ledger.application:Dossier.Opened",
    Dossier.Recorded: "ledger.application:Dossier.Recorded",
}
"""The topics every stored event has carried since the first ledger (``Dossier.TOPIC``)."""


def test_direct_stored_events_equal_the_library_mapping(tmp_path) -> None:
    ledger = open_ledger(Settings.from_env(tmp_path))
    ts = datetime(2025, 9, 1, 1, 2, 3, 456789, tzinfo=UTC)
    tag = {"_type_": "datetime_iso", "_data_": ts.isoformat()}
    env = {"event_id": "x", "data": {"n": 1, "f": 2.5, "s": "Hồ sơ"}}
    opened = Dossier.Opened(
        originator_id="d",
        originator_version=1,
        timestamp=ts,
        originator_topic=DOSSIER_TOPIC,
        envelope=env,
    )
    recorded = Dossier.Recorded(originator_id="d", originator_version=2, timestamp=ts, envelope=env)
    assert ledger._stored_event("d", 1, env, tag) == ledger.mapper.to_stored_event(opened)
    assert ledger._stored_event("d", 2, env, tag) == ledger.mapper.to_stored_event(recorded)


def test_appended_events_read_back_through_the_repository(tmp_path) -> None:
    ledger = open_ledger(Settings.from_env(tmp_path))
    events = dossier_life("000.00.12.H41-250901-0001", random.Random(1), steps=3)
    for env in events:
        ledger.append(env)
    dossier = ledger.get("000.00.12.H41-250901-0001")
    assert dossier.version == len(events)
    assert dossier.state.events == len(events)


def test_the_topics_are_pinned_to_the_historic_ones(tmp_path) -> None:
    """The classes live in ``ledger.aggregate``; the stored topics stay ``ledger.application:...``,
    so old ledgers read and verify byte for byte."""
    assert [DOSSIER_TOPIC, OPENED_TOPIC, RECORDED_TOPIC] == list(HISTORIC.values())
    for cls, topic in HISTORIC.items():
        assert resolve_topic(topic) is cls
    for cls in (Dossier.Opened, Dossier.Recorded):
        assert "TOPIC" not in {f.name for f in dataclasses.fields(cls)}

    ledger = open_ledger(Settings.from_env(tmp_path))
    ts = datetime(2025, 9, 1, 1, 2, 3, tzinfo=UTC)
    tag = {"_type_": "datetime_iso", "_data_": ts.isoformat()}
    opened = ledger._stored_event("d", 1, {"event_id": "x"}, tag)
    assert opened.topic == "ledger.application:Dossier.Opened"
    assert opened.state == (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-09-01T01:02:03+00:00"},'
        b'"originator_topic":"ledger.application:Dossier","envelope":{"event_id":"x"}}'
    )

    did = "000.00.12.H41-250901-0002"
    for env in dossier_life(did, random.Random(2), steps=3):
        ledger.append(env)
    topics = ledger.recorder.query(f"SELECT DISTINCT topic FROM {ledger._table}")
    assert {t for (t,) in topics} == {HISTORIC[Dossier.Opened], HISTORIC[Dossier.Recorded]}
    assert verify(ledger) == []
    assert ledger.get(did).version == len(ledger.events_of(did))
