"""Proving the ledger unaltered: chain verification and Merkle digests.

``verify`` recomputes every chain from the raw stored rows (trusting nothing
the application caches), cross-checks the event index written in the same
transactions, and on stores whose positions are gap-free by construction
(SQLite) names any missing position. ``issue_digest`` / ``check_digest`` publish
and later re-prove a Merkle root over the log up to a position.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import PersistenceError

from ledger.aggregate import DossierNotFound
from ledger.application import DossierLedger
from ledger.domain.hashchain import (
    DIGEST_ALGORITHM,
    ChainHeads,
    EventTally,
    MerkleFrontier,
    Problem,
    StoredRow,
    check_chain,
)
from ledger.scan import snapshot
from ledger.signing import sign_digest
from ledger.sqlite_store import LedgerSQLiteRecorder

STORE_ERRORS: tuple[type[BaseException], ...] = (PersistenceError, sqlite3.DatabaseError)


def verify(
    ledger: DossierLedger,
    dossier_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Problem]:
    """Every problem found in one dossier's chain, or in the whole ledger.

    The whole ledger is first read once in ledger order (:func:`proven_whole`);
    only if that does not prove it whole is it read again by dossier, to name
    each problem. A store too damaged to read (e.g. a corrupted SQLite page) is
    reported as an ``unreadable`` problem, not raised. Raises
    :class:`DossierNotFound` if ``dossier_id`` has neither stored events nor
    index rows.
    """
    try:
        if dossier_id is None and proven_whole(ledger, progress):
            return _integrity_check(ledger)
        return _verify(ledger, dossier_id)
    except STORE_ERRORS as e:
        return [Problem("unreadable", dossier_id or "*", None, None, None, f"store: {e}")]


def proven_whole(ledger: DossierLedger, progress: Callable[[int], None] | None = None) -> bool:
    """True if every chain links, every hash recomputes, the event index holds
    exactly the stored events and (SQLite) no position is missing.

    One sequential read of the store in ledger order and one of the index in its
    own order, holding a head per dossier (:class:`ChainHeads`). Reading by
    dossier instead makes the store seek for every event: on a log larger than
    the page cache that waits on the disk. False as soon as anything is off,
    before the slower read that names it.
    """
    heads = ChainHeads()
    tally = EventTally(secrets.token_bytes(16))
    gap_free = ledger.recorder.positions_gap_free
    expected = 1
    n = 0
    with snapshot(ledger) as snap:
        for n, row in enumerate(snap.ledger_rows(), 1):
            if (gap_free and row.position != expected) or not heads.link(row):
                return False
            expected = row.position + 1
            tally.add(row.envelope["event_id"], row.dossier_id, row.version)  # type: ignore[index]
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
        for event_id, did, version in snap.index_triples():
            tally.remove(event_id, did, version)
    if progress is not None:
        progress(n % PROGRESS_EVERY)
    return tally.balanced


PROGRESS_EVERY = 5000
"""Rows between progress reports of :func:`proven_whole`."""


def _verify(ledger: DossierLedger, dossier_id: str | None) -> list[Problem]:
    """Stream the store once, by dossier, merge-joined with the event index.

    Memory: one dossier's rows and the problems found, whatever the log's size.
    """
    problems: list[Problem] = []
    suspects: list[StoredRow] = []  # rows the index does not vouch for (duplicate check)
    seen_any = False
    with snapshot(ledger) as snap:
        index = _peekable(snap.index_rows(dossier_id))
        for did, rows in _by_dossier(snap.stored_rows(dossier_id)):
            seen_any = True
            problems.extend(_index_only(index, (did, 0)))  # dossiers known only to the index
            problems.extend(check_chain(did, rows))
            for row in rows:
                problems.extend(_index_only(index, (did, row.version)))
                indexed = index.take_while((did, row.version))
                if not indexed:
                    suspects.append(row)
                    eid = row.envelope.get("event_id") if row.envelope else None
                    problems.append(
                        Problem(
                            "inserted",
                            did,
                            row.position,
                            row.version,
                            eid,
                            "stored but not in the event index written with every append",
                        )
                    )
                    continue
                stored_eid = row.envelope.get("event_id") if row.envelope else None
                for event_id, _, _, _ in indexed:
                    if row.envelope is not None and stored_eid != event_id:
                        suspects.append(row)
                        problems.append(
                            Problem(
                                "altered",
                                did,
                                row.position,
                                row.version,
                                stored_eid,
                                f"stored where the index records event {event_id}",
                            )
                        )
        rest = list(_index_only(index, None))
        if dossier_id is not None and not seen_any and not rest:
            raise DossierNotFound(dossier_id)
        problems.extend(rest)
        problems.extend(_duplicates(ledger, suspects))
        if dossier_id is None:
            problems.extend(_integrity_check(ledger))
            if ledger.recorder.positions_gap_free:
                problems.extend(_missing_positions(snap.positions()))
    return sorted(problems, key=lambda p: (p.position or 0, p.dossier_id, p.version or 0, p.kind))


def _by_dossier(rows: Iterator[StoredRow]) -> Iterator[tuple[str, list[StoredRow]]]:
    """Consecutive rows of one dossier (the stream is ordered by dossier)."""
    current: list[StoredRow] = []
    for row in rows:
        if current and row.dossier_id != current[0].dossier_id:
            yield current[0].dossier_id, current
            current = []
        current.append(row)
    if current:
        yield current[0].dossier_id, current


class _peekable:
    """The index stream, consumed in step with the stored rows."""

    def __init__(self, it: Iterator[tuple[str, str, int, str]]) -> None:
        self._it = it
        self._head = next(it, None)

    def peek(self) -> tuple[str, str, int, str] | None:
        return self._head

    def pop(self) -> tuple[str, str, int, str]:
        head = self._head
        assert head is not None
        self._head = next(self._it, None)
        return head

    def take_while(self, key: tuple[str, int]) -> list[tuple[str, str, int, str]]:
        out = []
        while self._head is not None and (self._head[1], self._head[2]) == key:
            out.append(self.pop())
        return out


def _index_only(index: _peekable, before: tuple[str, int] | None) -> Iterator[Problem]:
    """Index rows ordered before ``before`` (None: all the rest): indexed, not stored."""
    while (head := index.peek()) is not None and (before is None or (head[1], head[2]) < before):
        event_id, did, version, etype = index.pop()
        yield Problem("deleted", did, None, version, event_id, f"{etype} is indexed but not stored")


def _duplicates(ledger: DossierLedger, suspects: list[StoredRow]) -> list[Problem]:
    """A row the index does not vouch for that repeats an indexed event's id.

    The index keys event ids uniquely, so only such rows can be duplicates; each
    is looked up by primary key (cheap: there are only as many as problems).
    """
    out: list[Problem] = []
    for row in suspects:
        eid = row.envelope.get("event_id") if row.envelope else None
        if not eid:
            continue
        where = _indexed_at(ledger, eid)
        if where is None:
            continue
        did, version = where
        rows = ledger.recorder.query(
            f"SELECT {ledger._pos_col}, state FROM {ledger._table} "
            "WHERE originator_id = ? AND originator_version = ?",
            [did, version],
        )
        if not rows:
            continue
        other_pos, state = int(rows[0][0]), bytes(rows[0][1])
        try:
            other_eid = orjson.loads(state)["envelope"].get("event_id")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if other_eid != eid or other_pos == row.position:
            continue
        if other_pos < row.position:  # the later of the two is the duplicate
            out.append(
                Problem(
                    "duplicate",
                    row.dossier_id,
                    row.position,
                    row.version,
                    eid,
                    f"same event_id as position {other_pos}",
                )
            )
        else:
            out.append(
                Problem(
                    "duplicate",
                    did,
                    other_pos,
                    version,
                    eid,
                    f"same event_id as position {row.position}",
                )
            )
    return out


def _indexed_at(ledger: DossierLedger, event_id: str) -> tuple[str, int] | None:
    rows = ledger.recorder.query(
        "SELECT dossier_id, version FROM ledger_event_index WHERE event_id = ?", [event_id]
    )
    return (rows[0][0], int(rows[0][1])) if rows else None


def _missing_positions(positions: Iterator[int]) -> Iterator[Problem]:
    """Gaps in a store whose positions are gap-free by construction, streamed."""
    expected = 1
    for p in positions:
        for missing in range(expected, p):
            yield Problem("deleted", "?", missing, None, None, "no event at this ledger position")
        expected = p + 1


def _integrity_check(ledger: DossierLedger) -> list[Problem]:
    """SQLite's own structural check (b-tree pages, index consistency)."""
    if not isinstance(ledger.recorder, LedgerSQLiteRecorder):
        return []
    rows = ledger.recorder.query("PRAGMA quick_check")
    messages = [str(r[0]) for r in rows if r and r[0] != "ok"]
    return [Problem("unreadable", "*", None, None, None, f"SQLite: {m}") for m in messages]


def issue_digest(ledger: DossierLedger, upto: int | None = None) -> dict[str, Any]:
    """A Merkle root over all events up to a position (default: the latest).

    Streams the log once, holding only the Merkle frontier (a few KB).
    """
    return RunningDigest().advance(ledger, upto)


class RunningDigest:
    """A digest kept up to date as the log grows: each call reads only new events.

    The relay issues one every hour; re-reading the whole log each time would
    cost O(log size) per digest, this costs O(events since the last one).
    """

    def __init__(self) -> None:
        self.frontier = MerkleFrontier()
        self.position = 0

    def advance(self, ledger: DossierLedger, upto: int | None = None) -> dict[str, Any]:
        with snapshot(ledger) as snap:
            latest = snap.max_position()
            upto = latest if upto is None else min(upto, latest)  # never vouch for the future
            if upto < self.position:
                raise ValueError(f"digest already at position {self.position}, asked {upto}")
            if upto > self.position:
                for position, h in snap.hashes(upto, after=self.position):
                    self.frontier.add(h)
                    self.position = position
                self.position = upto
        return {
            "algorithm": DIGEST_ALGORITHM,
            "position": upto,
            "events": self.frontier.size,
            "root": self.frontier.root(),
            "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


class DigestError(ValueError):
    """A digest (or a folder of them) that is not one: the message names the file or field."""


def validate_digest(digest: Any) -> dict[str, Any]:
    """The digest if its fields are well formed; else DigestError naming the field."""
    if not isinstance(digest, dict):
        raise DigestError("digest: must be a JSON object")
    for key in ("position", "events", "root"):
        if key not in digest:
            raise DigestError(f"digest: missing field {key!r}")
    for key in ("position", "events"):
        if type(digest[key]) is not int or digest[key] < 0:
            raise DigestError(f"digest: {key} must be a non-negative integer, got {digest[key]!r}")
    if not isinstance(digest["root"], str) or len(digest["root"]) != 64:
        raise DigestError(f"digest: root must be 64 hex digits, got {digest['root']!r}")
    if digest.get("algorithm", DIGEST_ALGORITHM) != DIGEST_ALGORITHM:
        raise DigestError(f"digest: unsupported algorithm {digest.get('algorithm')!r}")
    return digest


def check_digest(ledger: DossierLedger, digest: dict[str, Any]) -> list[Problem]:
    """Problems if the log no longer extends ``digest`` unchanged."""
    validate_digest(digest)
    return check_digests(ledger, [digest]).problems


class SeriesResult:
    """What :func:`check_digests` found: per digest held or not, and the first break."""

    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []
        self.broken: list[tuple[dict[str, Any], list[Problem]]] = []
        self.problems: list[Problem] = []

    @property
    def first_broken(self) -> dict[str, Any] | None:
        return self.broken[0][0] if self.broken else None

    def tampered_range(self) -> tuple[int, int] | None:
        """Positions (after, upto]: the first change lies in this range.

        ``after`` is the position of the last digest before the first broken one
        that still holds (0 if none); the broken digest's position bounds it above.
        """
        first = self.first_broken
        if first is None:
            return None
        below = [d["position"] for d in self.held if d["position"] < first["position"]]
        return (max(below, default=0), first["position"])


def check_digests(ledger: DossierLedger, digests: list[dict[str, Any]]) -> SeriesResult:
    """Check a series of digests in one pass over the log (Merkle frontier only).

    Each digest holds iff the events up to its position still hash to its root
    and number as many as it recorded. Since each root covers the whole prefix,
    an edit at position q breaks exactly the digests at positions >= q: the
    first broken digest and the last holding one before it bound q.
    """
    series = sorted(digests, key=lambda d: d["position"])
    result = SeriesResult()
    frontier = MerkleFrontier()
    pending = list(series)
    try:
        with snapshot(ledger) as snap:
            last = series[-1]["position"] if series else 0
            for position, h in snap.hashes(last):
                while pending and pending[0]["position"] < position:
                    _settle(result, pending.pop(0), frontier)
                frontier.add(h)
            while pending:
                _settle(result, pending.pop(0), frontier)
    except (*STORE_ERRORS, ValueError, KeyError, TypeError) as e:
        for d in pending:
            problem = Problem(
                "unreadable",
                "*",
                d["position"],
                None,
                None,
                f"cannot recompute the digest: {type(e).__name__}: {e}",
            )
            result.broken.append((d, [problem]))
            result.problems.append(problem)
    return result


def _settle(result: SeriesResult, digest: dict[str, Any], frontier: MerkleFrontier) -> None:
    """Compare one digest with the frontier over exactly the events up to its position."""
    problems: list[Problem] = []
    if frontier.size != digest["events"]:
        problems.append(
            Problem(
                "deleted" if frontier.size < digest["events"] else "inserted",
                "*",
                digest["position"],
                None,
                None,
                f"{frontier.size} events up to position {digest['position']}, "
                f"digest recorded {digest['events']}",
            )
        )
    root = frontier.root()
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
    if problems:
        result.broken.append((digest, problems))
        result.problems.extend(problems)
    else:
        result.held.append(digest)


# --- signed digests on disk ------------------------------------------------------


def digest_file_name(digest: dict[str, Any]) -> str:
    """``digest-<position>-<issued_at>.json``: sorts by position, never overwrites."""
    stamp = str(digest.get("issued_at", "")).replace(":", "").replace("+", "Z")[:17]
    return f"digest-{digest['position']:012d}-{stamp}.json"


def write_digest(digest: dict[str, Any], out_dir: Path) -> Path:
    """Write one digest file atomically into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / digest_file_name(digest)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(digest, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def issue_signed_digest(
    ledger: DossierLedger, out_dir: Path, key_path: Path, upto: int | None = None
) -> Path:
    """Issue a digest up to ``upto`` (default: the latest), sign it, write it to ``out_dir``."""

    return write_digest(sign_digest(issue_digest(ledger, upto), key_path), out_dir)


def load_digests(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``*.json`` digest in a folder, validated, by position (DigestError names the file)."""
    if not directory.is_dir():
        raise DigestError(f"{directory}: not a folder of digests")
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            out.append((path, validate_digest(json.loads(path.read_text(encoding="utf-8")))))
        except (ValueError, UnicodeDecodeError) as e:
            raise DigestError(f"{path}: not a digest: {e}") from None
    if not out:
        raise DigestError(f"{directory}: no digest files (*.json)")
    return sorted(out, key=lambda pd: pd[1]["position"])
