"""Tampering with the store behind the ledger's back is caught, and the event named.

SQLite: the ``sqlite3`` module on ``data_dir/ledger.sqlite3`` (table
``stored_events``) and raw byte flips in the file. PostgreSQL: the same SQL
edits through psycopg on the test schema.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.application import DossierLedger
from ledger.audit import issue_digest, proven_whole, verify
from ledger.bootstrap import conninfo, open_ledger
from ledger.domain import hashchain
from ledger.domain.hashchain import Problem
from ledger.settings import Settings
from simulator.factories import dossier_life

pytestmark = pytest.mark.integration

Execute = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


class Backend:
    """A seeded ledger plus a raw SQL connection to the same store."""

    def __init__(self, settings: Settings, ledger: DossierLedger, execute: Execute) -> None:
        self.settings = settings
        self.ledger = ledger
        self.execute = execute
        rng = random.Random(5)
        self.events = [e for i in range(3) for e in dossier_life(f"T-{i}", rng, steps=2)]
        ledger.append_batch(self.events[:9])
        ledger.append_batch(self.events[9:])
        self.did = self.events[0]["dossier_id"]
        self.pos = "rowid" if settings.store is None else "notification_id"
        self.table = ledger.recorder.events_table_name  # stored_events on SQLite

    def rows(self, did: str) -> list[tuple[int, int, bytes]]:
        """(position, version, state) of a dossier's events."""
        return [
            (int(p), int(v), bytes(s))
            for p, v, s in self.execute(
                f"SELECT {self.pos}, originator_version, state FROM {self.table} "
                "WHERE originator_id = %s ORDER BY originator_version",
                (did,),
            )
        ]

    def set_state(self, did: str, version: int, state: bytes) -> None:
        self.execute(
            f"UPDATE {self.table} SET state = %s WHERE originator_id = %s "
            "AND originator_version = %s",
            (state, did, version),
        )

    def problems(self) -> list[Problem]:
        """What verify names; the one-pass proof in ledger order must agree on whether any."""
        found = verify(self.ledger)
        assert proven_whole(self.ledger) == (found == []), found
        return found


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        settings = Settings.from_env(tmp_path / "data")
        ledger = open_ledger(settings)
        conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)

        def execute(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()

        closer = conn.close
    else:
        url = request.getfixturevalue("pg_url")
        settings = Settings.from_env(tmp_path / "data", store=url)
        ledger = open_ledger(settings)
        schema = url.rsplit("schema=", 1)[1]
        pg = psycopg.connect(conninfo(url), autocommit=True)
        pg.execute(f'SET search_path TO "{schema}"')

        def execute(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            cur = pg.execute(sql, params)
            return cur.fetchall() if cur.description else []

        closer = pg.close
    try:
        yield Backend(settings, ledger, execute)
    finally:
        closer()
        ledger.close()
        ledger.keys.close()


def named(problems: list[Problem], *, event_id: str | None = None, position: int | None = None):
    return [
        p
        for p in problems
        if (event_id is None or p.event_id == event_id)
        and (position is None or p.position == position)
    ]


def test_untouched_store_verifies(backend: Backend) -> None:
    assert backend.problems() == []


def test_flipping_any_byte_of_a_stored_event_is_caught(backend: Backend) -> None:
    position, version, state = backend.rows(backend.did)[1]
    eid = backend.events[1]["event_id"]
    offsets = range(len(state)) if backend.settings.store is None else range(0, len(state), 7)
    missed = []
    for i in offsets:
        flipped = bytearray(state)
        flipped[i] ^= 0x01
        backend.set_state(backend.did, version, bytes(flipped))
        problems = backend.problems()
        if not named(problems, position=position) and not named(problems, event_id=eid):
            missed.append((i, chr(state[i])))
    backend.set_state(backend.did, version, state)
    assert missed == []
    assert backend.problems() == []


def test_an_equal_value_in_other_bytes_is_caught(backend: Backend) -> None:
    """2.0 written as 2e0 parses to the same envelope: the bytes still changed."""
    position, version, state = backend.rows(backend.did)[0]
    assert b'"value":' in state
    obj = orjson.loads(state)
    obj["envelope"]["data"]["processing_time"]["value"] = 5.0
    obj["envelope"]["hash"] = hashchain.event_hash(obj["envelope"])
    rewritten = orjson.dumps(obj).replace(b'"value":5.0', b'"value":5e0')
    backend.set_state(backend.did, version, rewritten)
    kinds = {p.kind for p in named(backend.problems(), position=position)}
    assert "unreadable" in kinds


def test_deleting_an_event_is_caught(backend: Backend) -> None:
    for version in (2, None):  # one in the middle, then the dossier's last
        rows = backend.rows(backend.did)
        position, v, state = rows[1] if version == 2 else rows[-1]
        eid = orjson.loads(state)["envelope"]["event_id"]
        backend.execute(
            f"DELETE FROM {backend.table} WHERE originator_id = %s AND originator_version = %s",
            (backend.did, v),
        )
        problems = backend.problems()
        assert any(p.kind == "deleted" for p in named(problems, event_id=eid)), problems


def test_swapping_two_state_blobs_is_caught(backend: Backend) -> None:
    rows = backend.rows(backend.did)
    (p2, v2, s2), (p3, v3, s3) = rows[1], rows[2]
    backend.set_state(backend.did, v2, s3)
    backend.set_state(backend.did, v3, s2)
    problems = backend.problems()
    assert named(problems, position=p2) and named(problems, position=p3)
    assert {p.kind for p in problems} >= {"reordered"}


def test_swapping_blobs_across_dossiers_is_caught(backend: Backend) -> None:
    other = backend.events[-1]["dossier_id"]
    (pa, va, sa), (pb, vb, sb) = backend.rows(backend.did)[1], backend.rows(other)[1]
    backend.set_state(backend.did, va, sb)
    backend.set_state(other, vb, sa)
    problems = backend.problems()
    assert {p.kind for p in named(problems, position=pa)} >= {"moved"}
    assert named(problems, position=pb)


def test_swapping_two_versions_is_caught(backend: Backend) -> None:
    rows = backend.rows(backend.did)
    (_, v2, _), (_, v3, _) = rows[1], rows[2]
    eids = {backend.events[1]["event_id"], backend.events[2]["event_id"]}
    for a, b in ((v2, -1), (v3, v2), (-1, v3)):
        backend.execute(
            f"UPDATE {backend.table} SET originator_version = %s "
            "WHERE originator_id = %s AND originator_version = %s",
            (b, backend.did, a),
        )
    problems = backend.problems()
    assert eids <= {p.event_id for p in problems}


def test_inserting_a_copied_event_is_caught(backend: Backend) -> None:
    rows = backend.rows(backend.did)
    _, _, state = rows[1]
    last = rows[-1][1]
    backend.execute(
        f"INSERT INTO {backend.table} (originator_id, originator_version, topic, state) "
        f"SELECT originator_id, %s, topic, state FROM {backend.table} "
        "WHERE originator_id = %s AND originator_version = 2",
        (last + 1, backend.did),
    )
    problems = backend.problems()
    assert {p.kind for p in problems if p.version == last + 1} >= {"inserted", "duplicate"}


def test_inserting_a_well_forged_event_is_caught(backend: Backend) -> None:
    """Correct hash and link: only the event index, written with every append, knows."""
    rows = backend.rows(backend.did)
    last_pos, last_v, last_state = rows[-1]
    obj = orjson.loads(last_state)
    if "originator_topic" in obj:
        del obj["originator_topic"]
    prev = obj["envelope"]["hash"]
    forged = {k: v for k, v in obj["envelope"].items() if k not in ("hash", "prev_hash")}
    forged["event_id"] = str(uuid.uuid4())
    forged["type"] = "FeedbackGiven"
    forged["data"] = {"rating": 5}
    obj["envelope"] = hashchain.seal(forged, prev)
    topic = backend.execute(
        f"SELECT topic FROM {backend.table} WHERE originator_id = %s AND originator_version = 2",
        (backend.did,),
    )[0][0]
    backend.execute(
        f"INSERT INTO {backend.table} (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)",
        (backend.did, last_v + 1, topic, orjson.dumps(obj)),
    )
    problems = backend.problems()
    assert [p.kind for p in named(problems, event_id=forged["event_id"])] == ["inserted"]


def test_an_event_dropped_from_the_index_or_added_to_it_is_caught(backend: Backend) -> None:
    eid = backend.events[4]["event_id"]
    did, version, etype = backend.execute(
        "SELECT dossier_id, version, type FROM ledger_event_index WHERE event_id = %s", (eid,)
    )[0]
    backend.execute("DELETE FROM ledger_event_index WHERE event_id = %s", (eid,))
    assert [p.kind for p in named(backend.problems(), event_id=eid)] == ["inserted"]
    backend.execute(
        "INSERT INTO ledger_event_index VALUES (%s, %s, %s, %s)", (eid, did, version, etype)
    )
    assert backend.problems() == []
    ghost = str(uuid.uuid4())
    backend.execute(
        "INSERT INTO ledger_event_index VALUES (%s, %s, %s, %s)", (ghost, did, 99, etype)
    )
    assert [p.kind for p in named(backend.problems(), event_id=ghost)] == ["deleted"]


def test_digest_catches_what_an_attacker_also_hid_from_the_index(backend: Backend) -> None:
    digest = issue_digest(backend.ledger)
    rows = backend.rows(backend.did)
    _, last_v, _ = rows[-1]
    eid = backend.ledger.events_of(backend.did)[-1].envelope["event_id"]
    backend.execute("DELETE FROM ledger_event_index WHERE event_id = %s", (eid,))
    backend.execute(
        f"DELETE FROM {backend.table} WHERE originator_id = %s AND originator_version = %s",
        (backend.did, last_v),
    )
    from ledger.audit import check_digest

    assert check_digest(backend.ledger, digest)


# --- SQLite file: raw bytes -------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> tuple[Settings, list[dict[str, Any]]]:
    settings = Settings.from_env(tmp_path / "data")
    ledger = open_ledger(settings)
    events = [e for i in range(3) for e in dossier_life(f"F-{i}", random.Random(i), steps=2)]
    ledger.append_batch(events)
    ledger.close()  # checkpoints the WAL into ledger.sqlite3
    ledger.keys.close()
    return settings, events


def verify_cli(settings: Settings) -> Any:
    return CliRunner().invoke(main, ["verify", "--all", "--data-dir", str(settings.data_dir)])


def test_raw_byte_flip_in_an_events_hash_is_caught_and_named(sqlite_file) -> None:
    settings, _ = sqlite_file
    ledger = open_ledger(settings)
    target = ledger.events_of("F-1")[2].envelope
    ledger.close()
    ledger.keys.close()
    blob = bytearray(settings.sqlite_path.read_bytes())
    needle = b'"hash":"' + target["hash"].encode()
    at = blob.find(needle)
    assert at > 0 and blob.find(needle, at + 1) == -1
    blob[at + len(needle) - 1] ^= 0x01
    settings.sqlite_path.write_bytes(bytes(blob))
    result = verify_cli(settings)
    assert result.exit_code == 1
    assert "ALTERED" in result.output and target["event_id"] in result.output


def test_raw_byte_flips_anywhere_in_an_event_are_caught(sqlite_file) -> None:
    settings, events = sqlite_file
    original = settings.sqlite_path.read_bytes()
    eid = events[4]["event_id"].encode()
    start = original.find(b'{"envelope":{"event_id":"' + eid)
    if start < 0:
        start = original.find(b'"event_id":"' + eid)
    assert start > 0
    end = original.find(b"}}", original.find(b'"timestamp"', start)) + 2
    for i in range(start, end, 11):
        blob = bytearray(original)
        blob[i] ^= 0x20
        settings.sqlite_path.write_bytes(bytes(blob))
        result = verify_cli(settings)
        assert result.exit_code == 1, (i - start, result.output)
        assert "Traceback" not in result.output


def test_a_corrupted_page_is_reported_not_raised(sqlite_file) -> None:
    settings, _ = sqlite_file
    blob = bytearray(settings.sqlite_path.read_bytes())
    page = 4096 if len(blob) > 8192 else 1024
    blob[page + 8 : page + 40] = b"\xff" * 32  # a b-tree page header and cell pointers
    settings.sqlite_path.write_bytes(bytes(blob))
    result = verify_cli(settings)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "UNREADABLE" in result.output + (result.stderr if result.stderr_bytes else "")
