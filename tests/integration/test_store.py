"""The ledger on a real store: one scenario, run on SQLite and on PostgreSQL.

``ledger_backend`` opens a fresh ledger on a temporary SQLite file, or on a
fresh PostgreSQL schema (``pg_url``: skips without PostgreSQL, fails when CI is set).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.aggregate import DOSSIER_TOPIC, Dossier, DossierNotFound
from ledger.application import DossierLedger
from ledger.audit import check_digest, issue_digest, verify
from ledger.bootstrap import open_ledger
from ledger.domain import hashchain
from ledger.domain.events import EnvelopeError
from ledger.domain.lifecycle import ImpossibleEvent
from ledger.domain.privacy import pseudonym
from ledger.ingest import ingest_lines
from ledger.settings import Settings
from simulator.factories import START, dossier_life, envelope, event_stream

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DossierLedger]:
    store = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    ledger = open_ledger(Settings.from_env(tmp_path / "data", store=store))
    try:
        yield ledger
    finally:
        ledger.close()
        ledger.keys.close()


def life(seed: int, steps: int = 2) -> list[dict[str, Any]]:
    return dossier_life(f"D-{uuid.uuid4().hex[:8]}", random.Random(seed), steps=steps)


def test_append_one_then_read_back(ledger_backend: DossierLedger) -> None:
    events = life(1)
    stored = [ledger_backend.append(e) for e in events]
    assert all(s is not None for s in stored)
    did = events[0]["dossier_id"]
    back = ledger_backend.events_of(did)
    assert [r.envelope["event_id"] for r in back] == [e["event_id"] for e in events]
    assert [r.version for r in back] == list(range(1, len(events) + 1))
    assert [r.position for r in back] == [s.position for s in stored]
    assert back[0].envelope["prev_hash"] == hashchain.GENESIS
    assert back[1].envelope["prev_hash"] == back[0].envelope["hash"]
    assert back[0].envelope["data"]["rule_set"] == "ND118-2025/v1"  # pinned at receipt
    assert verify(ledger_backend) == []


def test_append_is_idempotent_by_event_id(ledger_backend: DossierLedger) -> None:
    events = life(2)
    first = ledger_backend.append_batch(events)
    assert len(first.stored) == len(events) and not first.rejected
    again = ledger_backend.append_batch(events)
    assert (len(again.stored), len(again.duplicates), again.rejected) == (0, len(events), [])
    assert ledger_backend.append(events[0]) is None
    assert ledger_backend.status()["events"] == len(events)


def test_only_open_dossiers_stay_in_the_writers_memory(ledger_backend: DossierLedger) -> None:
    """Memory flat in the log's length: a returned dossier's head leaves the cache, and
    its events sent again are still recognised as duplicates (read from the store)."""
    done, open_ = life(5), life(6)[:2]
    assert done[-1]["type"] == "ResultReturned" and open_[-1]["type"] != "ResultReturned"
    ledger_backend.append_batch(done + open_)
    cached = set(ledger_backend._cache)
    assert done[0]["dossier_id"] not in cached and open_[0]["dossier_id"] in cached
    again = ledger_backend.append_batch(done)
    assert (len(again.stored), len(again.duplicates), again.rejected) == (0, len(done), [])


def test_event_id_reused_for_another_event_is_refused(ledger_backend: DossierLedger) -> None:
    a, b = life(3), life(4)
    ledger_backend.append_batch(a + b[:1])
    thief = dict(b[1], event_id=a[1]["event_id"])
    with pytest.raises(ImpossibleEvent) as e:
        ledger_backend.append(thief)
    assert e.value.rule == "duplicate_event_id" and b[0]["dossier_id"] in str(e.value)


def test_event_id_reused_for_the_same_type_with_other_content_is_refused(
    ledger_backend: DossierLedger,
) -> None:
    events = life(7)
    ledger_backend.append_batch(events)
    changed = dict(events[1], data=dict(events[1]["data"], to_official="someone-else"))
    with pytest.raises(ImpossibleEvent) as e:
        ledger_backend.append(changed)
    assert e.value.rule == "duplicate_event_id" and "data.to_official" in str(e.value)
    restamped = dict(events[0], recorded_at="2030-01-01T00:00:00+07:00")
    assert ledger_backend.append(restamped) is None  # a retry, not another act
    fresh = life(8)
    twin = dict(fresh[1], data=dict(fresh[1]["data"], step="other"))
    result = ledger_backend.append_batch([*fresh, twin])
    assert [r.rule for r in result.rejected] == ["duplicate_event_id"]
    assert ledger_backend.status()["events"] == len(events) + len(fresh)


def test_batch_keeps_the_good_and_names_the_bad(ledger_backend: DossierLedger) -> None:
    events = life(5)
    orphan = dict(events[1], dossier_id="D-never-received", event_id=str(uuid.uuid4()))
    broken = {k: v for k, v in events[2].items() if k != "actor"} | {"event_id": str(uuid.uuid4())}
    result = ledger_backend.append_batch([*events, orphan, broken])
    assert len(result.stored) == len(events)
    reasons = {r.index: r for r in result.rejected}
    assert reasons[len(events)].rule == "unknown_dossier"
    assert reasons[len(events) + 1].field == "actor"
    with pytest.raises(EnvelopeError):
        ledger_backend.append(broken)


def test_impossible_sequences_are_refused_naming_dossier_event_and_rule(
    ledger_backend: DossierLedger,
) -> None:
    events = life(6, steps=1)  # received, handed over, step, result, returned
    ledger_backend.append_batch(events)
    did = events[0]["dossier_id"]
    rng = random.Random(9)
    for etype, data, rule in [
        ("HandedOver", events[1]["data"], "after_end"),
        ("DossierReceived", events[0]["data"], "duplicate_receipt"),
    ]:
        env = envelope(rng, did, etype, START.replace(year=2026), data)
        with pytest.raises(ImpossibleEvent) as e:
            ledger_backend.append(env)
        assert (e.value.rule, e.value.dossier_id, e.value.event_id) == (
            rule,
            did,
            env["event_id"],
        )


def test_status_counts(ledger_backend: DossierLedger) -> None:
    assert ledger_backend.status() == {"events": 0, "dossiers": 0, "position": 0}
    events = event_stream(4, seed=11, prefix=uuid.uuid4().hex[:6])
    stored = ledger_backend.append_batch(events).stored
    status = ledger_backend.status()
    assert status["events"] == len(events) and status["dossiers"] == 4
    assert status["position"] == max(r.position for r in stored)


def test_read_pages_in_ledger_order(ledger_backend: DossierLedger) -> None:
    events = event_stream(5, seed=12, prefix=uuid.uuid4().hex[:6])
    ledger_backend.append_batch(events[:10])
    ledger_backend.append_batch(events[10:])
    everything = list(ledger_backend.iter_all(page=3))
    assert [r.envelope["event_id"] for r in everything] == [e["event_id"] for e in events]
    positions = [r.position for r in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    middle = positions[4]
    assert [r.position for r in ledger_backend.read(middle, 2)] == positions[5:7]
    assert [r.position for r in ledger_backend.read(0, 100, upto=middle)] == positions[:5]


def test_unknown_dossier(ledger_backend: DossierLedger) -> None:
    with pytest.raises(DossierNotFound):
        ledger_backend.events_of("nope")
    with pytest.raises(DossierNotFound):
        verify(ledger_backend, "nope")


def test_cursors(ledger_backend: DossierLedger) -> None:
    assert ledger_backend.get_cursor("relay") == 0
    ledger_backend.set_cursor("relay", 5)
    ledger_backend.set_cursor("relay", 7)
    assert ledger_backend.get_cursor("relay") == 7


def test_digest_is_extended_by_later_appends(ledger_backend: DossierLedger) -> None:
    ledger_backend.append_batch(life(13))
    digest = issue_digest(ledger_backend)
    assert digest["events"] == ledger_backend.status()["events"]
    ledger_backend.append_batch(life(14))
    assert check_digest(ledger_backend, digest) == []
    later = issue_digest(ledger_backend, upto=10**9)  # clamped: no vouching for the future
    assert later["position"] == ledger_backend.max_position()
    forged = dict(digest, root="0" * 64)
    assert [p.kind for p in check_digest(ledger_backend, forged)] == ["altered"]
    with pytest.raises(ValueError, match="position"):
        check_digest(ledger_backend, dict(digest, position="5"))


# --- ingest ------------------------------------------------------------------


def test_ingest_reports_each_bad_line_and_keeps_the_good(
    ledger_backend: DossierLedger,
) -> None:
    events = life(20)
    unknown_type = dict(events[1], type="DossierStolen", event_id=str(uuid.uuid4()))
    missing = {k: v for k, v in events[1].items() if k != "occurred_at"}
    missing["event_id"] = str(uuid.uuid4())
    returned_early = dict(
        events[-1], event_id=str(uuid.uuid4()), dossier_id=events[0]["dossier_id"]
    )
    lines = [orjson.dumps(e).decode() for e in events[:2]]
    lines += ["{not json", orjson.dumps(missing).decode(), orjson.dumps(unknown_type).decode()]
    lines += [""]  # blank: skipped, still counted
    lines += [orjson.dumps(returned_early).decode()]  # a result returned before it was issued
    lines += [orjson.dumps(e).decode() for e in events[2:-2]]
    report = ingest_lines(ledger_backend, [x + "\n" for x in lines], source="f.jsonl")
    errors = {e.line: str(e) for e in report.errors}
    assert set(errors) == {3, 4, 5, 7}
    assert errors[3].startswith("f.jsonl:3: invalid JSON")
    assert errors[4] == "f.jsonl:4: occurred_at: missing"
    assert errors[5].startswith("f.jsonl:5: type: unknown event type 'DossierStolen'")
    assert "return_without_result" in errors[7] and events[0]["dossier_id"] in errors[7]
    assert report.stored == len(events) - 2 and report.read == len(lines) - 1
    assert ledger_backend.status()["events"] == len(events) - 2
    again = ingest_lines(ledger_backend, [x + "\n" for x in lines], source="f.jsonl")
    assert again.stored == 0 and again.duplicates == len(events) - 2


def test_dry_run_writes_nothing_but_sees_sequences_within_the_file(
    ledger_backend: DossierLedger,
) -> None:
    events = life(21)
    applicant = {"name": "X", "id_number": uuid.uuid4().hex}  # PG keys are not per schema
    events[0] = dict(events[0], data=dict(events[0]["data"], applicant=applicant))
    dup_receipt = dict(events[0], event_id=str(uuid.uuid4()))
    lines = [orjson.dumps(e) for e in [*events, dup_receipt]]
    report = ingest_lines(ledger_backend, lines, dry_run=True, batch_size=2)
    assert report.stored == len(events)
    assert [e.line for e in report.errors] == [len(events) + 1]
    assert "duplicate_receipt" in report.errors[0].reason
    assert ledger_backend.status()["events"] == 0
    pseudo = pseudonym(ledger_backend.keys.secret(), events[0]["data"]["applicant"]["id_number"])
    assert ledger_backend.keys.keys_for([pseudo], create=False) == {}  # no key written either


def test_ingest_tolerates_bom_crlf_blank_lines_and_bytes(ledger_backend: DossierLedger) -> None:
    events = life(22, steps=1)
    raw = [b"\xef\xbb\xbf" + orjson.dumps(events[0]) + b"\r\n", b"\r\n", b"   \n"]
    raw += [orjson.dumps(e) + b"\r\n" for e in events[1:]]
    raw += [b'{"bad": "\xff\xfe"}\n', b"x" * 5000 + b"\n"]
    report = ingest_lines(ledger_backend, raw, source="w.jsonl", max_line_bytes=4096)
    assert report.stored == len(events)
    bad = {e.line: e.reason for e in report.errors}
    n = len(raw)
    assert bad[n - 1].startswith("not valid UTF-8: byte 0xff")
    assert bad[n].startswith("line too long: 5001 bytes")
    assert set(bad) == {n - 1, n}


# --- schema versions ------------------------------------------------------------


def store_legacy(ledger: DossierLedger, envelopes: list[dict[str, Any]]) -> None:
    """Write events as an older ledger would have: schema_version 1, hashed as stored."""
    prev = hashchain.GENESIS
    now = datetime.now(UTC)
    stored, index = [], []
    for version, env in enumerate(envelopes, start=1):
        env = hashchain.seal(env | {"appended_at": now.isoformat()}, prev)
        prev = env["hash"]
        did = env["dossier_id"]
        if version == 1:
            event: Dossier.Event = Dossier.Opened(
                originator_id=did,
                originator_version=1,
                timestamp=now,
                originator_topic=DOSSIER_TOPIC,
                envelope=env,
            )
        else:
            event = Dossier.Recorded(
                originator_id=did, originator_version=version, timestamp=now, envelope=env
            )
        stored.append(ledger.mapper.to_stored_event(event))
        index.append((env["event_id"], did, version, env["type"]))
    ledger.recorder.insert_events(stored, index_rows=index)


def test_a_v1_event_is_read_back_as_v2(ledger_backend: DossierLedger) -> None:
    events = life(30, steps=1)
    received = dict(events[0], schema_version=1, recorded_at=events[0]["recorded_at"])
    data = dict(received["data"], channel=3)
    data["processing_days"] = data.pop("processing_time")["value"]
    data["applicant"] = {"pseudonym": "ap-" + "0" * 24, "sealed": "AAAA"}
    data["rule_set"] = "ND118-2025/v1"
    received["data"] = data
    store_legacy(ledger_backend, [received])
    assert verify(ledger_backend) == []  # the hash covers the stored v1 form

    (rec,) = ledger_backend.events_of(received["dossier_id"])
    assert rec.envelope["schema_version"] == 2
    assert rec.envelope["data"]["channel"] == "postal"
    assert rec.envelope["data"]["processing_time"] == {
        "value": data["processing_days"],
        "unit": "working_days",
    }
    assert [r.envelope["schema_version"] for r in ledger_backend.read(0, 10)] == [2]
    # the ledger folds it like any other event: the next one is judged against it
    assert ledger_backend.append(events[1]) is not None
    with pytest.raises(ImpossibleEvent):
        ledger_backend.append(dict(events[0], event_id=str(uuid.uuid4())))


def test_a_v1_input_line_is_upcast_on_ingest(ledger_backend: DossierLedger) -> None:
    events = life(31, steps=1)
    v1 = dict(events[0], schema_version=1)
    v1["data"] = dict(v1["data"], channel="2")
    rec = ledger_backend.append(v1)
    assert rec is not None and rec.envelope["schema_version"] == 2
    assert ledger_backend.events_of(v1["dossier_id"])[0].envelope["data"]["channel"] == "online"


# --- personal data -------------------------------------------------------------


def test_applicant_sealed_and_forgotten(ledger_backend: DossierLedger, tmp_path: Path) -> None:
    events = life(40)
    name = events[0]["data"]["applicant"]["name"]
    id_number = events[0]["data"]["applicant"]["id_number"]
    ledger_backend.append_batch(events)
    stored = ledger_backend.events_of(events[0]["dossier_id"])[0].envelope
    block = stored["data"]["applicant"]
    assert set(block) == {"pseudonym", "sealed"} and block["pseudonym"].startswith("ap-")
    raw_everything = orjson.dumps([r.envelope for r in ledger_backend.iter_all()])
    assert name.encode() not in raw_everything and id_number.encode() not in raw_everything
    assert ledger_backend.applicant(stored) == events[0]["data"]["applicant"]

    assert ledger_backend.forget(block["pseudonym"]) is True
    assert ledger_backend.applicant(stored) is None
    assert ledger_backend.forget(block["pseudonym"]) is False
    assert verify(ledger_backend) == []  # erased, yet every chain still verifies
    assert ledger_backend.events_of(events[0]["dossier_id"])[0].envelope == stored


def test_the_same_applicant_keeps_one_pseudonym(ledger_backend: DossierLedger) -> None:
    a, b = life(41), life(42)
    b[0] = dict(b[0], data=dict(b[0]["data"], applicant=a[0]["data"]["applicant"]))
    ledger_backend.append_batch(a + b)
    pa = ledger_backend.events_of(a[0]["dossier_id"])[0].envelope["data"]["applicant"]
    pb = ledger_backend.events_of(b[0]["dossier_id"])[0].envelope["data"]["applicant"]
    assert pa["pseudonym"] == pb["pseudonym"] and pa["sealed"] != pb["sealed"]


def test_sqlite_file_holds_no_personal_data(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "data")
    ledger = open_ledger(settings)
    events = life(43)
    ledger.append_batch(events)
    ledger.close()
    ledger.keys.close()
    blob = settings.sqlite_path.read_bytes()
    applicant = events[0]["data"]["applicant"]
    assert applicant["id_number"].encode() not in blob
    assert applicant["name"].encode() not in blob
    assert (tmp_path / "data" / "keys.sqlite3").is_file()
