"""Proving the ledger unaltered: chain verification and Merkle digests.

``verify`` recomputes every chain from the raw stored rows (trusting nothing
the application caches), cross-checks the event index written in the same
transactions, and on stores whose positions are gap-free by construction
(SQLite) names any missing position. ``issue_digest`` / ``check_digest`` publish
and later re-prove a Merkle root over the log up to a position.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from ledger.application import DossierLedger
from ledger.hashchain import (
    DIGEST_ALGORITHM,
    Problem,
    StoredRow,
    check_chain,
    check_positions,
    merkle_root,
)


def verify(ledger: DossierLedger, dossier_id: str | None = None) -> list[Problem]:
    """Every problem found in one dossier's chain, or in the whole ledger."""
    by_dossier: dict[str, list[StoredRow]] = defaultdict(list)
    for row in ledger.stored_rows(dossier_id):
        by_dossier[row.dossier_id].append(row)
    problems: list[Problem] = []
    for did in sorted(by_dossier):
        problems.extend(check_chain(did, by_dossier[did]))

    stored = {(r.dossier_id, r.version): r for rows in by_dossier.values() for r in rows}
    for event_id, did, version, etype in sorted(ledger.index_rows(dossier_id)):
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


def issue_digest(ledger: DossierLedger, upto: int | None = None) -> dict[str, Any]:
    """A Merkle root over all events up to a position (default: the latest)."""
    upto = ledger.max_position() if upto is None else upto
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
    for key in ("position", "events", "root"):
        if key not in digest:
            raise ValueError(f"digest: missing field {key!r}")
    if digest.get("algorithm", DIGEST_ALGORITHM) != DIGEST_ALGORITHM:
        raise ValueError(f"digest: unsupported algorithm {digest.get('algorithm')!r}")
    hashes = ledger.event_hashes(int(digest["position"]))
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
