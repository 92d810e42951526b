"""Proving the ledger unaltered: chain verification and Merkle digests.

``verify`` recomputes every chain from the raw stored rows (trusting nothing
the application caches), cross-checks the event index written in the same
transactions, and on stores whose positions are gap-free by construction
(SQLite) names any missing position. ``issue_digest`` / ``check_digest`` publish
and later re-prove a Merkle root over the log up to a position.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import PersistenceError

from ledger.application import DossierLedger, DossierNotFound
from ledger.hashchain import (
    DIGEST_ALGORITHM,
    Problem,
    StoredRow,
    check_chain,
    check_positions,
    merkle_root,
)
from ledger.sqlite_store import LedgerSQLiteRecorder

STORE_ERRORS: tuple[type[BaseException], ...] = (PersistenceError, sqlite3.DatabaseError)


def verify(ledger: DossierLedger, dossier_id: str | None = None) -> list[Problem]:
    """Every problem found in one dossier's chain, or in the whole ledger.

    A store too damaged to read (e.g. a corrupted SQLite page) is reported as an
    ``unreadable`` problem, not raised. Raises :class:`DossierNotFound` if
    ``dossier_id`` has neither stored events nor index rows.
    """
    try:
        return _verify(ledger, dossier_id)
    except STORE_ERRORS as e:
        return [Problem("unreadable", dossier_id or "*", None, None, None, f"store: {e}")]


def _verify(ledger: DossierLedger, dossier_id: str | None) -> list[Problem]:
    by_dossier: dict[str, list[StoredRow]] = defaultdict(list)
    for row in ledger.stored_rows(dossier_id):
        by_dossier[row.dossier_id].append(row)
    index = sorted(ledger.index_rows(dossier_id))
    if dossier_id is not None and not by_dossier and not index:
        raise DossierNotFound(dossier_id)
    problems: list[Problem] = []
    for did in sorted(by_dossier):
        problems.extend(check_chain(did, by_dossier[did]))
    if dossier_id is None:
        problems.extend(_integrity_check(ledger))

    stored = {(r.dossier_id, r.version): r for rows in by_dossier.values() for r in rows}
    indexed = {(did, version) for _, did, version, _ in index}
    for (did, version), row in stored.items():
        if (did, version) not in indexed:
            eid = row.envelope.get("event_id") if row.envelope else None
            problems.append(
                Problem(
                    "inserted",
                    did,
                    row.position,
                    version,
                    eid,
                    "stored but not in the event index written with every append",
                )
            )
    for event_id, did, version, etype in index:
        row = stored.get((did, version))
        if row is None:
            problems.append(
                Problem(
                    "deleted", did, None, version, event_id, f"{etype} is indexed but not stored"
                )
            )
        elif row.envelope is not None and row.envelope.get("event_id") != event_id:
            problems.append(
                Problem(
                    "altered",
                    did,
                    row.position,
                    version,
                    row.envelope.get("event_id"),
                    f"stored where the index records event {event_id}",
                )
            )
    seen: dict[str, StoredRow] = {}
    for row in sorted(stored.values(), key=lambda r: r.position):
        eid = row.envelope.get("event_id") if row.envelope else None
        if eid and eid in seen:
            problems.append(
                Problem(
                    "duplicate",
                    row.dossier_id,
                    row.position,
                    row.version,
                    eid,
                    f"same event_id as position {seen[eid].position}",
                )
            )
        elif eid:
            seen[eid] = row
    if dossier_id is None and ledger.recorder.positions_gap_free:
        for position in check_positions(r.position for r in stored.values()):
            problems.append(
                Problem("deleted", "?", position, None, None, "no event at this ledger position")
            )
    return sorted(problems, key=lambda p: (p.position or 0, p.dossier_id, p.version or 0, p.kind))


def _integrity_check(ledger: DossierLedger) -> list[Problem]:
    """SQLite's own structural check (b-tree pages, index consistency)."""
    if not isinstance(ledger.recorder, LedgerSQLiteRecorder):
        return []
    rows = ledger.recorder.query("PRAGMA quick_check")
    messages = [str(r[0]) for r in rows if r and r[0] != "ok"]
    return [Problem("unreadable", "*", None, None, None, f"SQLite: {m}") for m in messages]


def issue_digest(ledger: DossierLedger, upto: int | None = None) -> dict[str, Any]:
    """A Merkle root over all events up to a position (default: the latest)."""
    latest = ledger.max_position()
    upto = latest if upto is None else min(upto, latest)  # never vouch for the future
    hashes = ledger.event_hashes(upto)
    return {
        "algorithm": DIGEST_ALGORITHM,
        "position": upto,
        "events": len(hashes),
        "root": merkle_root([h for _, h in hashes]),
        "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def check_digest(ledger: DossierLedger, digest: dict[str, Any]) -> list[Problem]:
    """Problems if the log no longer extends ``digest`` unchanged."""
    if not isinstance(digest, dict):
        raise ValueError("digest: must be a JSON object")
    for key in ("position", "events", "root"):
        if key not in digest:
            raise ValueError(f"digest: missing field {key!r}")
    for key in ("position", "events"):
        if type(digest[key]) is not int or digest[key] < 0:
            raise ValueError(f"digest: {key} must be a non-negative integer, got {digest[key]!r}")
    if not isinstance(digest["root"], str) or len(digest["root"]) != 64:
        raise ValueError(f"digest: root must be 64 hex digits, got {digest['root']!r}")
    if digest.get("algorithm", DIGEST_ALGORITHM) != DIGEST_ALGORITHM:
        raise ValueError(f"digest: unsupported algorithm {digest.get('algorithm')!r}")
    try:
        hashes = ledger.event_hashes(digest["position"])
    except (*STORE_ERRORS, ValueError, KeyError, TypeError) as e:
        return [
            Problem(
                "unreadable",
                "*",
                digest["position"],
                None,
                None,
                f"cannot recompute the digest: {type(e).__name__}: {e}",
            )
        ]
    problems: list[Problem] = []
    if len(hashes) != digest["events"]:
        problems.append(
            Problem(
                "deleted" if len(hashes) < digest["events"] else "inserted",
                "*",
                digest["position"],
                None,
                None,
                f"{len(hashes)} events up to position {digest['position']}, digest recorded {digest['events']}",
            )
        )
    root = merkle_root([h for _, h in hashes])
    if root != digest["root"]:
        problems.append(
            Problem(
                "altered",
                "*",
                digest["position"],
                None,
                None,
                f"Merkle root {root[:16]}… differs from the digest's {str(digest['root'])[:16]}…",
            )
        )
    return problems
