"""Hash chains name every altered, deleted, inserted or reordered event; Merkle roots are RFC 6962."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.hashchain import (
    GENESIS,
    ChainHeads,
    EventTally,
    Problem,
    StoredRow,
    canonical,
    check_chain,
    check_positions,
    event_hash,
    merkle_root,
    seal,
)
from simulator.factories import dossier_life

DID = "D-7"


def chain(n_steps: int = 3, seed: int = 1) -> list[StoredRow]:
    rows: list[StoredRow] = []
    prev = GENESIS
    for i, env in enumerate(dossier_life(DID, random.Random(seed), steps=n_steps), start=1):
        sealed = seal(env, prev)
        prev = sealed["hash"]
        rows.append(StoredRow(position=10 * i, dossier_id=DID, version=i, envelope=sealed))
    return rows


def kinds(problems: list[Problem]) -> set[str]:
    return {p.kind for p in problems}


def renumber(rows: list[StoredRow]) -> list[StoredRow]:
    return [StoredRow(r.position, r.dossier_id, i, r.envelope) for i, r in enumerate(rows, 1)]


def linked_in_ledger_order(rows: list[StoredRow]) -> bool:
    """What ``verify --all`` proves in one pass: every row, by position, extends its chain."""
    heads = ChainHeads()
    return all(heads.link(r) for r in sorted(rows, key=lambda r: r.position))


def agree(rows: list[StoredRow]) -> list[Problem]:
    """check_chain's problems, after checking the one-pass proof agrees on whether any."""
    problems = check_chain(DID, rows)
    assert linked_in_ledger_order(rows) == (problems == [])
    return problems


def test_an_intact_chain_verifies() -> None:
    assert check_chain(DID, chain()) == []


def test_seal_links_and_hash_excludes_itself() -> None:
    rows = chain()
    assert rows[0].envelope["prev_hash"] == GENESIS
    assert rows[1].envelope["prev_hash"] == rows[0].envelope["hash"]
    env = rows[1].envelope
    body = {k: v for k, v in env.items() if k != "hash"}
    assert env["hash"] == hashlib.sha256(canonical(body)).hexdigest() == event_hash(env)


def test_altered_event_is_named() -> None:
    rows = chain()
    env = dict(rows[2].envelope, occurred_at="2020-01-01T00:00:00+07:00")
    rows[2] = StoredRow(rows[2].position, DID, 3, env)
    (p,) = check_chain(DID, rows)
    assert (p.kind, p.version, p.event_id, p.position) == ("altered", 3, env["event_id"], 30)
    assert "ALTERED" in str(p) and env["event_id"] in str(p)


def test_rehashed_edit_breaks_the_next_link() -> None:
    rows = chain()
    env = seal(
        {k: v for k, v in rows[1].envelope.items() if k not in ("hash", "prev_hash")}
        | {"occurred_at": "2020-01-01T00:00:00+07:00"},
        rows[0].envelope["hash"],
    )
    rows[1] = StoredRow(rows[1].position, DID, 2, env)
    problems = check_chain(DID, rows)
    assert [(p.kind, p.version) for p in problems] == [("inserted", 3)]


def test_deleted_event_is_named_by_the_gap() -> None:
    rows = chain()
    del rows[1]
    problems = check_chain(DID, rows)
    assert ("deleted", 3) in {(p.kind, p.version) for p in problems}
    assert "v2 missing" in str(problems[0])


def test_deleted_and_renumbered_is_still_caught() -> None:
    rows = renumber(chain()[:1] + chain()[2:])
    assert kinds(check_chain(DID, rows)) == {"inserted"}


def test_swapped_events_are_reordered() -> None:
    rows = chain()
    rows[1], rows[2] = rows[2], rows[1]
    problems = check_chain(DID, renumber(rows))
    assert kinds(problems) == {"reordered"}
    assert {p.event_id for p in problems} >= {
        rows[1].envelope["event_id"],
        rows[2].envelope["event_id"],
    }


def test_inserted_event_is_named() -> None:
    rows = chain()
    fake = seal(dict(rows[1].envelope, event_id="ffffffff-ffff-4fff-8fff-ffffffffffff"), "1" * 64)
    rows.insert(2, StoredRow(99, DID, 3, fake))
    problems = check_chain(DID, renumber(rows))
    assert ("inserted", fake["event_id"]) in {(p.kind, p.event_id) for p in problems}


def test_unreadable_and_moved_rows() -> None:
    rows = chain()
    rows[1] = StoredRow(20, DID, 2, None, "stored bytes do not decode: boom")
    rows[2] = StoredRow(30, DID, 3, dict(rows[2].envelope, dossier_id="D-8"))
    assert kinds(check_chain(DID, rows)) >= {"unreadable", "moved"}


def test_hostile_values_do_not_crash_verification() -> None:
    rows = chain()
    rows[1] = StoredRow(20, DID, 2, dict(rows[1].envelope, hash=[1], prev_hash={"a": 1}))
    rows[2] = StoredRow(30, DID, 3, dict(rows[2].envelope, fee=2**70))
    found = kinds(check_chain(DID, rows))
    assert "altered" in found and "unreadable" in found


def test_check_positions_lists_gaps() -> None:
    assert check_positions([1, 2, 5, 3]) == [4]
    assert check_positions([2, 3]) == [1]
    assert check_positions([]) == []


# --- canonical form ------------------------------------------------------------

json_no_floats = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_no_floats)
def test_canonical_equals_stdlib_json_for_non_floats(obj: Any) -> None:
    expected = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(obj) == expected.encode("utf-8")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_floats_round_trip(x: float) -> None:
    assert json.loads(canonical({"x": x}))["x"] == x


def test_key_order_does_not_change_the_hash() -> None:
    env = chain()[0].envelope
    assert event_hash(dict(reversed(list(env.items())))) == event_hash(env)


# --- properties: any edit or removal is caught --------------------------------


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), steps=st.integers(1, 4), data=st.data())
def test_any_edit_is_caught(seed: int, steps: int, data: Any) -> None:
    rows = chain(steps, seed)
    i = data.draw(st.integers(0, len(rows) - 1))
    env = dict(rows[i].envelope)
    key = data.draw(st.sampled_from(sorted(env)))
    new = data.draw(st.none() | st.text(max_size=5) | st.integers() | st.booleans())
    if env[key] == new and type(env[key]) is type(new):
        return
    env[key] = new
    rows[i] = StoredRow(rows[i].position, DID, rows[i].version, env)
    problems = agree(rows)
    assert problems, f"edit of {key} in v{i + 1} not caught"
    assert any(p.version in (i + 1, i + 2) for p in problems)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), steps=st.integers(1, 4), data=st.data())
def test_any_removal_is_caught(seed: int, steps: int, data: Any) -> None:
    rows = chain(steps, seed)
    i = data.draw(st.integers(0, len(rows) - 2))  # removing the last is the index's job
    del rows[i]
    if data.draw(st.booleans()):
        rows = renumber(rows)
    assert agree(rows)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10**6), data=st.data())
def test_any_reordering_is_caught(seed: int, data: Any) -> None:
    rows = chain(3, seed)
    perm = data.draw(st.permutations(range(len(rows))))
    if list(perm) == sorted(perm):
        return
    assert agree(renumber([rows[k] for k in perm]))


def test_heads_follow_interleaved_dossiers_in_ledger_order() -> None:
    a = chain(4, seed=2)  # positions 10, 20, 30, 40
    b, prev = [], GENESIS
    for i, env in enumerate(dossier_life("D-8", random.Random(3), steps=3), start=1):
        sealed = seal(env, prev)
        prev = sealed["hash"]
        b.append(StoredRow(position=10 * i + 5, dossier_id="D-8", version=i, envelope=sealed))
    heads = ChainHeads()
    assert all(heads.link(r) for r in sorted(a + b, key=lambda r: r.position))
    assert not heads.link(a[0])  # v1 again: not the next version
    assert not heads.link(StoredRow(99, "D-9", 1, a[0].envelope))  # names another dossier


def test_event_tally_balances_only_on_the_same_triples() -> None:
    triples = [(f"e{i}", f"D-{i % 3}", i) for i in range(50)]

    def tally(added: list[tuple[str, str, int]], removed: list[tuple[str, str, int]]) -> bool:
        t = EventTally(b"k" * 16)
        for x in added:
            t.add(*x)
        for x in removed:
            t.remove(*x)
        return t.balanced

    assert tally(triples, list(reversed(triples)))
    assert not tally(triples, triples[1:])  # indexed, not stored
    assert not tally(triples[1:], triples)  # stored, not indexed
    assert not tally(triples, [*triples[:-1], ("e49", "D-1", 50)])  # moved to another version
    assert not tally([*triples, triples[0]], [*triples, triples[1]])  # a duplicate for another


# --- Merkle root ---------------------------------------------------------------


def rfc6962(leaves: list[bytes]) -> bytes:
    """The recursive definition, RFC 6962 §2.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc6962(leaves[:k]) + rfc6962(leaves[k:])).digest()


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_merkle_root_matches_the_rfc_6962_recursion(leaves: list[bytes]) -> None:
    assert merkle_root([x.hex() for x in leaves]) == rfc6962(leaves).hex()


def test_merkle_root_changes_with_any_leaf_or_order() -> None:
    hashes = [hashlib.sha256(bytes([i])).hexdigest() for i in range(5)]
    root = merkle_root(hashes)
    assert merkle_root(hashes[:4]) != root
    assert merkle_root([hashes[1], hashes[0], *hashes[2:]]) != root
    assert merkle_root(hashes) == root


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 9])
def test_merkle_known_sizes(n: int) -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(n)]
    assert merkle_root([x.hex() for x in leaves]) == rfc6962(leaves).hex()
