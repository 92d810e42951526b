"""Tamper evidence: a SHA-256 chain per dossier and a Merkle root over the ledger.

Each stored envelope carries ``prev_hash`` (the previous event of the same
dossier, or ``GENESIS``) and ``hash`` = SHA-256 of the canonical encoding of the
envelope without its ``hash`` field. Editing, deleting, inserting or reordering
any event breaks a link, and :func:`check_chain` names the event.

The digest is an RFC 6962 Merkle tree hash over the event hashes in ledger
order: publishing ``(position, root)`` lets anyone later prove the log still
extends it unchanged.

Canonical encoding: JSON, keys sorted, no insignificant whitespace, UTF-8, no
ASCII escaping: exactly what ``json.dumps(obj, sort_keys=True, separators=(",",
":"), ensure_ascii=False).encode()`` produces for strings, integers, booleans,
nulls, lists and objects (a unit test checks this). Floats are written in
their shortest round-trip form as orjson writes them, which differs from
Python's ``json`` only in exponents (orjson ``1.5e-7``, json ``1.5e-07``).
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64
HASH_ALGORITHM = "sha256"
DIGEST_ALGORITHM = "rfc6962-sha256"


def canonical(obj: Any) -> bytes:
    """The byte string that is hashed: sorted keys, compact, UTF-8."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def event_hash(envelope: dict[str, Any]) -> str:
    """Hash of an envelope (its ``prev_hash`` included, its ``hash`` excluded)."""
    body = {k: v for k, v in envelope.items() if k != "hash"} if "hash" in envelope else envelope
    return hashlib.sha256(canonical(body)).hexdigest()


def seal(envelope: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """Return the envelope linked to its predecessor and carrying its own hash."""
    linked = {**envelope, "prev_hash": prev_hash}
    linked.pop("hash", None)
    linked["hash"] = event_hash(linked)
    return linked


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row as read back from a store, before any trust is placed in it."""

    position: int
    dossier_id: str  # the store's key (originator id)
    version: int  # the store's sequence number within the dossier
    envelope: dict[str, Any] | None  # None when the stored bytes could not be decoded
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """A verification failure, naming the event and what is wrong with it."""

    kind: str  # altered | unreadable | deleted | inserted | reordered | moved | duplicate
    dossier_id: str
    position: int | None
    version: int | None
    event_id: str | None
    detail: str

    def __str__(self) -> str:
        where = f"dossier {self.dossier_id}"
        if self.version is not None:
            where += f" v{self.version}"
        if self.position is not None:
            where += f" (position {self.position})"
        if self.event_id:
            where += f" event {self.event_id}"
        return f"{self.kind.upper()}: {where}: {self.detail}"


def check_chain(dossier_id: str, rows: Sequence[StoredRow]) -> list[Problem]:
    """Verify one dossier's rows (in stored version order) and name every break."""
    problems: list[Problem] = []
    hashes = {
        r.envelope["hash"]: r
        for r in rows
        if r.envelope is not None and isinstance(r.envelope.get("hash"), str)
    }
    prev = GENESIS
    expected_version = 1
    for row in rows:
        env = row.envelope
        eid = env.get("event_id") if env else None

        def problem(kind: str, detail: str, row: StoredRow = row, eid: Any = eid) -> None:
            problems.append(Problem(kind, dossier_id, row.position, row.version, eid, detail))

        if row.version != expected_version:
            missing = ", ".join(f"v{v}" for v in range(expected_version, row.version))
            if missing:
                problem("deleted", f"version(s) {missing} missing before this event")
            else:
                problem("inserted", f"unexpected version {row.version}")
        expected_version = row.version + 1
        if env is None:
            problem("unreadable", row.error or "stored bytes do not decode")
            prev = "?"
            continue
        if env.get("dossier_id") != dossier_id:
            problem("moved", f"envelope names dossier {env.get('dossier_id')!r}")
        try:
            recomputed = event_hash(env)
        except TypeError as e:  # e.g. an integer beyond 64 bits: cannot be canonical
            problem("unreadable", f"envelope cannot be canonicalised: {e}")
            prev = "?"
            continue
        if recomputed != env.get("hash"):
            problem(
                "altered", f"content hash {recomputed[:16]}… != stored {str(env.get('hash'))[:16]}…"
            )
        claimed_prev = env.get("prev_hash")
        if claimed_prev != prev and prev != "?":
            claimed = hashes.get(claimed_prev) if isinstance(claimed_prev, str) else None
            if claimed is not None:
                problem(
                    "reordered",
                    f"links to v{claimed.version} (position {claimed.position}) "
                    "but is not stored after it",
                )
            elif claimed_prev == GENESIS:
                problem("reordered", "claims to be the first event but is not")
            else:
                problem(
                    "inserted",
                    "prev_hash matches no event of this dossier (predecessor deleted or event inserted)",
                )
        prev = env["hash"] if isinstance(env.get("hash"), str) else "?"
    return problems


def check_positions(positions: Iterable[int]) -> list[int]:
    """Missing positions in a store whose positions are gap-free by construction."""
    missing: list[int] = []
    expected = 1
    for p in sorted(positions):
        if p > expected:
            missing.extend(range(expected, p))
        expected = p + 1
    return missing


# --- Proof in ledger order ------------------------------------------------------


class ChainHeads:
    """Each dossier's last link, fed rows in ledger order.

    Proves every chain whole in one pass over the log as stored, without sorting
    it by dossier: one packed head (next version, last hash: 36 bytes) per
    dossier. :meth:`link` only answers whether a row extends its chain exactly;
    naming what is wrong is :func:`check_chain`'s work.
    """

    __slots__ = ("_heads",)

    def __init__(self) -> None:
        self._heads: dict[str, bytes] = {}

    def link(self, row: StoredRow) -> bool:
        """True if the row is its dossier's next version, links to the last and hashes right."""
        env = row.envelope
        if env is None or env.get("dossier_id") != row.dossier_id:
            return False
        head = self._heads.get(row.dossier_id)
        version, prev = (1, GENESIS) if head is None else (int.from_bytes(head[:4]), head[4:].hex())
        stored = env.get("hash")
        if row.version != version or env.get("prev_hash") != prev or not isinstance(stored, str):
            return False
        try:
            if event_hash(env) != stored:
                return False
        except TypeError:  # cannot be canonicalised
            return False
        self._heads[row.dossier_id] = (version + 1).to_bytes(4) + bytes.fromhex(stored)
        return True


class EventTally:
    """An order-free fingerprint of (event id, dossier, version) triples.

    The stored events and the event index are each read in their own cheapest
    order; they hold the same triples exactly when what was added and what was
    removed balance. Sums of BLAKE2b-128 digests under a key the caller draws
    at random, so no one can forge a balance without it.
    """

    __slots__ = ("_key", "_sum", "_count")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._sum = 0
        self._count = 0

    def _digest(self, event_id: Any, dossier_id: Any, version: Any) -> int:
        triple = orjson.dumps([event_id, dossier_id, version])
        return int.from_bytes(hashlib.blake2b(triple, digest_size=16, key=self._key).digest())

    def add(self, event_id: Any, dossier_id: Any, version: Any) -> None:
        self._sum += self._digest(event_id, dossier_id, version)
        self._count += 1

    def remove(self, event_id: Any, dossier_id: Any, version: Any) -> None:
        self._sum -= self._digest(event_id, dossier_id, version)
        self._count -= 1

    @property
    def balanced(self) -> bool:
        return self._count == 0 and self._sum == 0


# --- Merkle digest (RFC 6962 §2.1) -------------------------------------------


def _leaf(h: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + h).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(event_hashes: Sequence[str]) -> str:
    """Merkle tree hash over event hashes (hex) in ledger order; RFC 6962 shape."""
    if not event_hashes:
        return hashlib.sha256(b"").hexdigest()
    level = [_leaf(bytes.fromhex(h)) for h in event_hashes]
    # Bottom-up pairing with an odd last node promoted unchanged equals the
    # RFC 6962 recursive split at the largest power of two.
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


class MerkleFrontier:
    """The same root as :func:`merkle_root`, built one event hash at a time.

    Holds only the roots of the perfect subtrees of the leaves so far (at most
    log2(n) + 1 of them), so a digest of any log size needs a few kilobytes.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes decreasing
        self.size = 0

    def add(self, event_hash: str) -> None:
        node, width = _leaf(bytes.fromhex(event_hash)), 1
        stack = self._stack
        while stack and stack[-1][0] == width:
            _, left = stack.pop()
            node, width = _node(left, node), width * 2
        stack.append((width, node))
        self.size += 1

    def root(self) -> str:
        if not self._stack:
            return hashlib.sha256(b"").hexdigest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = _node(left, node)
        return node.hex()
