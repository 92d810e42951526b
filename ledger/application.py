"""The write side: ``DossierLedger``, an eventsourcing application of ``Dossier`` aggregates.

Every accepted envelope becomes one stored event of its dossier's aggregate,
sealed into the dossier's hash chain, with its applicant block encrypted. A
batch is judged event by event (bad ones are refused with a reason, good ones
kept) and the accepted events are saved in one transaction, together with
their rows in the event index. Optimistic-concurrency conflicts with another
writer are retried from fresh state, never surfaced.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
)
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from ledger.domain import hashchain
from ledger.domain.events import (
    SCHEMA_VERSION,
    EnvelopeError,
    Recorded,
    parse_instant,
    upcast,
    validate,
)
from ledger.domain.lifecycle import EMPTY, ImpossibleEvent, Lifecycle, check, evolve
from ledger.domain.privacy import KeyStore, new_key, pseudonym, seal_applicant, unseal_applicant
from ledger.domain.rules import NoRuleSetForDossier, NoRuleSetInForce, RuleBook
from ledger.gc_pause import paused_gc

SQLITE_RECORDER = "ledger.sqlite_store:LedgerSQLiteRecorder"
POSTGRES_RECORDER = "ledger.postgres_store:LedgerPostgresRecorder"


class DossierNotFound(LookupError):
    def __init__(self, dossier_id: str) -> None:
        super().__init__(f"unknown dossier {dossier_id!r}")
        self.dossier_id = dossier_id


class Dossier(BaseAggregate[str]):
    """One dossier, keyed by its dossier code; its events are ledger envelopes
    and its state is the pure ``Lifecycle`` fold.

    The ledger writes these events itself (``DossierLedger._stored_event``, in the
    library's exact stored form); the class is how the library reads them back.
    """

    class Event(CanMutateAggregate[str], metaclass=MetaDomainEvent):
        originator_id: str
        originator_version: int
        timestamp: datetime  # when the ledger appended it (= envelope appended_at)

    class Opened(Event, CanInitAggregate[str]):
        originator_topic: str
        envelope: dict[str, Any]

    class Recorded(Event):
        envelope: dict[str, Any]

        def apply(self, aggregate: Dossier) -> None:
            aggregate.state = evolve(aggregate.state, self.envelope)

    def __init__(self, envelope: dict[str, Any]) -> None:
        self.state: Lifecycle = evolve(EMPTY, envelope)


class OrjsonTranscoder(Transcoder):
    """JSON via orjson; datetimes at the top level of an event's state are tagged.

    Envelopes are plain JSON values, so only the library's own ``timestamp``
    needs a tag. Several times faster than the stdlib transcoder, which matters
    for bulk ingest and replay.
    """

    def register(self, transcoding: Any) -> None:  # pragma: no cover - not needed
        raise NotImplementedError

    @staticmethod
    def _default(o: Any) -> Any:
        if isinstance(o, datetime):
            return {"_type_": "datetime_iso", "_data_": o.isoformat()}
        raise TypeError(f"cannot encode {type(o).__name__}")

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._default, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def decode(self, data: bytes) -> Any:
        obj = orjson.loads(data)
        for key, value in obj.items():
            if isinstance(value, dict) and value.get("_type_") == "datetime_iso":
                obj[key] = datetime.fromisoformat(value["_data_"])
        return obj


@dataclass
class Rejection:
    """Why one input envelope was refused: ``field`` or ``rule`` names the cause."""

    index: int
    event_id: str | None
    reason: str
    field: str | None = None
    rule: str | None = None


@dataclass
class AppendResult:
    stored: list[Recorded] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)  # input indexes already in the ledger
    rejected: list[Rejection] = field(default_factory=list)


class _RedoCarefully(Exception):
    """An optimistic append met a refusal: redo the batch with every lookup."""


@dataclass(slots=True)
class _Head:
    """What the ledger must know of a dossier's stream to append to it."""

    version: int
    state: Lifecycle


@dataclass
class _Pending:
    index: int
    envelope: dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


class DossierLedger(Application[str]):
    """Use cases of the ledger: append, read, verify, digest, forget."""

    name = "DossierLedger"
    env = {"ORIGINATOR_ID_TYPE": "text", "AGGREGATE_CACHE_MAXSIZE": ""}
    max_conflict_retries = 20
    cache_limit = 200_000

    def __init__(
        self,
        env: dict[str, str],
        *,
        rules: RuleBook,
        keys: KeyStore,
        sqlite_mmap: str | None = None,
    ) -> None:
        super().__init__(env)
        self.rules = rules
        self.keys = keys
        # DOSSIER_SQLITE_MMAP as given; checked when a reader opens (ledger.log_reader).
        self.sqlite_mmap = sqlite_mmap
        self._secret = keys.secret()
        self._pos_col = "rowid" if self.recorder.positions_gap_free else "notification_id"
        self._table = self.recorder.qualified_events_table
        # Aggregates as last saved by this process; a stale one only causes a
        # version conflict, which clears the cache and retries.
        self._cache: dict[str, _Head] = {}

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    # --- writing ------------------------------------------------------------

    def append(self, envelope: dict[str, Any]) -> Recorded | None:
        """Append one event; return it as stored (None if it was already there).

        Raises :class:`EnvelopeError` or :class:`ImpossibleEvent`.
        """
        result = self.append_batch([envelope])
        if result.rejected:
            raise result.rejected_errors[0]  # type: ignore[attr-defined]
        return result.stored[0] if result.stored else None

    def append_batch(
        self,
        envelopes: Sequence[Any],
        *,
        dry_run: bool = False,
        overlay: dict[str, Any] | None = None,
    ) -> AppendResult:
        """Append many events in one transaction; each bad one is refused alone.

        With ``dry_run`` nothing is written; ``overlay`` (a dict the caller keeps
        across calls) carries the would-be state from one dry-run batch to the next.

        The first attempt is optimistic: it trusts this process's cache of stream
        heads and lets the store's unique keys (dossier + version, event id) catch
        a duplicate or a concurrent writer. Any such conflict redoes the batch
        carefully from fresh state, so the outcome is the same, only slower.
        """
        for attempt in range(self.max_conflict_retries + 1):
            try:
                with paused_gc():
                    return self._append_batch(envelopes, dry_run, overlay, careful=attempt > 0)
            except _RedoCarefully:
                continue
            except IntegrityError:
                self._cache.clear()
                if attempt == self.max_conflict_retries:
                    raise
                if attempt:
                    time.sleep(0.002 * attempt)
            except OperationalError as e:
                # SQLite (WAL) refuses at once, without waiting, to upgrade a read
                # transaction after another process committed (e.g. the relay's
                # cursor): a conflict like any other, so redo from fresh state.
                self._cache.clear()
                if "locked" not in str(e) or attempt == self.max_conflict_retries:
                    raise
                time.sleep(0.005 * (attempt + 1))
            except BaseException:
                self._cache.clear()
                raise
        raise AssertionError("unreachable")

    def _append_batch(
        self,
        envelopes: Sequence[Any],
        dry_run: bool,
        overlay: dict[str, Any] | None,
        *,
        careful: bool,
    ) -> AppendResult:
        careful = careful or dry_run
        result = AppendResult()
        errors: list[Exception] = []
        valid: list[_Pending] = []
        for i, raw in enumerate(envelopes):
            try:
                valid.append(_Pending(i, validate(raw)))
            except EnvelopeError as e:
                eid = raw.get("event_id") if isinstance(raw, dict) else None
                result.rejected.append(Rejection(i, eid, str(e), field=e.field))
                errors.append(e)

        # Heads first, event ids after: a concurrent writer's commit seen in a head is then
        # also seen among the known ids, so its events count as duplicates here, never as
        # a second receipt (the reverse order let one slip in between the two reads).
        if overlay is not None:
            heads_overlay: dict[str, _Head] = overlay.setdefault("heads", {})
            wanted = [
                p.envelope["dossier_id"]
                for p in valid
                if p.envelope["dossier_id"] not in heads_overlay
            ]
            heads = {**self._load_heads(wanted), **heads_overlay}
        else:
            heads = self._heads_for(valid, careful)
        known = self._lookup_event_ids([p.envelope["event_id"] for p in valid]) if careful else {}
        if overlay is not None:
            known.update(overlay.setdefault("ids", {}))
        keys = self._applicant_keys(valid, create=not dry_run)  # a dry run writes no keys
        appended_at = _now()
        appended_iso = appended_at.isoformat()
        seen: dict[str, tuple[str, str]] = {}
        seen_envs: dict[str, dict[str, Any]] = {}
        # Stored events whose id comes again: same event (a retry) or a reused id?
        twins = self._stored_envelopes(list(known)) if careful and known else {}
        index_rows: list[tuple[str, str, int, str]] = []
        touched: dict[str, _Head] = {}
        accepted: list[tuple[str, int, dict[str, Any]]] = []  # (dossier id, version, envelope)

        for p in valid:
            env = p.envelope
            eid, did = env["event_id"], env["dossier_id"]
            prior = known.get(eid) or seen.get(eid)
            if prior is not None:
                twin = seen_envs.get(eid) or twins.get(eid)
                differs = [] if twin is None else self._differences(twin, env)
                if prior == (did, env["type"]) and not differs:
                    result.duplicates.append(p.index)
                    continue
                err = ImpossibleEvent(
                    did,
                    eid,
                    "duplicate_event_id",
                    f"event_id already used by {prior[1]} of dossier {prior[0]}"
                    + (f" with other {', '.join(differs)}" if differs else ""),
                )
                result.rejected.append(Rejection(p.index, eid, str(err), rule=err.rule))
                errors.append(err)
                continue
            head = heads.get(did)
            state = head.state if head is not None else EMPTY
            try:
                stored_env = self._prepare(env, state, keys, appended_iso)
                check(
                    state,
                    stored_env,
                    ordering_tolerance=self._ordering_tolerance(state, stored_env),
                )
            except (ImpossibleEvent, EnvelopeError) as err:
                if not careful:  # perhaps a duplicate the optimistic pass did not look up
                    raise _RedoCarefully from err
                result.rejected.append(
                    Rejection(
                        p.index,
                        eid,
                        str(err),
                        rule=getattr(err, "rule", None),
                        field=getattr(err, "field", None),
                    )
                )
                errors.append(err)
                continue
            stored_env = hashchain.seal(stored_env, state.last_hash or hashchain.GENESIS)
            version = head.version + 1 if head is not None else 1
            heads[did] = touched[did] = _Head(version, evolve(state, stored_env))
            seen[eid] = (did, env["type"])
            seen_envs[eid] = env
            index_rows.append((eid, did, version, env["type"]))
            accepted.append((did, version, stored_env))

        if dry_run:
            if overlay is not None:
                overlay["heads"].update(touched)
                overlay["ids"].update(seen)
            result.stored = [Recorded(0, 0, {}) for _ in accepted]
        elif accepted:
            timestamp = {"_type_": "datetime_iso", "_data_": appended_iso}
            stored = [self._stored_event(did, v, env, timestamp) for did, v, env in accepted]
            positions = self.recorder.insert_events(stored, index_rows=index_rows)
            if positions is None or len(positions) != len(stored):  # pragma: no cover
                raise RuntimeError("the recorder did not return a position for every event")
            result.stored = [
                Recorded(pos, v, env) for pos, (_, v, env) in zip(positions, accepted, strict=True)
            ]
            self._remember_heads(touched)
        result.rejected_errors = errors  # type: ignore[attr-defined]
        return result

    def _stored_event(
        self, dossier_id: str, version: int, envelope: dict[str, Any], timestamp: dict[str, str]
    ) -> StoredEvent:
        """The stored event the ``Dossier`` aggregate would have produced.

        Written directly (the library's per-event aggregate mutation and mapping
        cost more than the rest of an append) in the exact form the library's
        mapper and :class:`OrjsonTranscoder` give ``Dossier.Opened`` /
        ``Dossier.Recorded``, so ``repository.get`` reads it back as a ``Dossier``;
        ``tests`` check the two forms are byte-identical.
        """
        if version == 1:
            state = {
                "timestamp": timestamp,
                "originator_topic": _DOSSIER_TOPIC,
                "envelope": envelope,
            }
            topic = _OPENED_TOPIC
        else:
            state = {"timestamp": timestamp, "envelope": envelope}
            topic = _RECORDED_TOPIC
        return StoredEvent(dossier_id, version, topic, orjson.dumps(state))

    def _prepare(
        self, env: dict[str, Any], state: Lifecycle, keys: dict[str, bytes], appended_iso: str
    ) -> dict[str, Any]:
        """The envelope as it will be stored: ledger fields set, personal data sealed."""
        out = dict(env)
        out["appended_at"] = appended_iso
        if out.get("recorded_at") is None:
            out["recorded_at"] = appended_iso
        if env["type"] == "DossierReceived":
            data = dict(env["data"])
            if data.get("rule_set") is None:
                received = parse_instant(env["occurred_at"], "occurred_at")
                try:
                    data["rule_set"] = self.rules.in_force(received).id
                except NoRuleSetInForce as e:
                    raise NoRuleSetForDossier(env["dossier_id"], e.day.isoformat()) from None
            else:
                try:
                    self.rules.get(data["rule_set"])
                except KeyError:
                    raise EnvelopeError(
                        "data.rule_set", f"unknown rule set {data['rule_set']!r}"
                    ) from None
            applicant = data["applicant"]
            if "sealed" not in applicant:
                pseudo = pseudonym(self._secret, applicant["id_number"])
                data["applicant"] = seal_applicant(
                    dict(applicant), pseudo, keys.get(pseudo) or new_key()
                )
            out["data"] = data
        return out

    def _ordering_tolerance(self, state: Lifecycle, env: dict[str, Any]) -> Any:
        rule_set = state.rule_set or env["data"].get("rule_set")
        return (
            self.rules.get(rule_set).ordering_tolerance
            if rule_set
            else self.rules.rule_sets[-1].ordering_tolerance
        )

    def _applicant_keys(
        self, pending: Iterable[_Pending], *, create: bool = True
    ) -> dict[str, bytes]:
        pseudos = [
            pseudonym(self._secret, p.envelope["data"]["applicant"]["id_number"])
            for p in pending
            if p.envelope["type"] == "DossierReceived"
            and "sealed" not in p.envelope["data"]["applicant"]
        ]
        return self.keys.keys_for(pseudos, create=create) if pseudos else {}

    def _stored_envelopes(self, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored envelopes (upcast) of these event ids, found through the event index."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(event_ids), 500):
            chunk = event_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for eid, state in self.recorder.query(
                f"SELECT i.event_id, e.state FROM ledger_event_index i JOIN {self._table} e "
                "ON e.originator_id = i.dossier_id AND e.originator_version = i.version "
                f"WHERE i.event_id IN ({marks})",
                chunk,
            ):
                out[eid] = self.decode(state)
        return out

    def _differences(self, twin: dict[str, Any], env: dict[str, Any]) -> list[str]:
        """Fields in which ``env`` is another act than ``twin`` (stored or earlier in the batch).

        ``recorded_at`` and ledger-set values are ignored (a retry may restamp
        them); the applicant is compared by pseudonym (it is sealed in the store).
        """

        def comparable(e: dict[str, Any]) -> dict[str, Any]:
            data = {k: v for k, v in e["data"].items() if v is not None}
            applicant = data.get("applicant")
            if isinstance(applicant, dict) and "id_number" in applicant:
                data["applicant"] = pseudonym(self._secret, applicant["id_number"])
            elif isinstance(applicant, dict):
                data["applicant"] = applicant.get("pseudonym")
            return {
                "type": e["type"],
                "dossier_id": e["dossier_id"],
                "occurred_at": e["occurred_at"],
                "actor": e["actor"],
                "data": data,
            }

        a, b = comparable(twin), comparable(env)
        if "rule_set" not in b["data"]:  # pinned by the ledger when absent on input
            a["data"].pop("rule_set", None)
        out = [k for k in ("type", "dossier_id", "occurred_at", "actor") if a[k] != b[k]]
        keys = sorted(a["data"].keys() | b["data"].keys())
        return out + [f"data.{k}" for k in keys if a["data"].get(k) != b["data"].get(k)]

    def _lookup_event_ids(self, event_ids: list[str]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for i in range(0, len(event_ids), 500):
            chunk = event_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for eid, did, etype in self.recorder.query(
                f"SELECT event_id, dossier_id, type FROM ledger_event_index WHERE event_id IN ({marks})",
                chunk,
            ):
                found[eid] = (did, etype)
        return found

    def _remember_heads(self, touched: dict[str, _Head]) -> None:
        """Keep the heads of open dossiers only: a returned or withdrawn dossier takes no
        more events (one that comes is refused after its head is read from the store),
        so the cache holds what the work needs by its nature, the open dossiers, and
        stays flat however long the log grows."""
        cache = self._cache
        if len(cache) > self.cache_limit:  # a backstop: never reached by a steady office
            cache.clear()
        for did, head in touched.items():
            if head.state.closed:
                cache.pop(did, None)
            else:
                cache[did] = head

    def _heads_for(self, pending: list[_Pending], careful: bool) -> dict[str, _Head]:
        """Stream heads for a batch: cached ones, and the rest from the store.

        Optimistically, a dossier whose first event in the batch is its receipt is
        taken to be new without asking the store; if it is not, the insert of its
        version 1 fails and the batch is redone carefully.
        """
        first: dict[str, str] = {}
        for p in pending:
            first.setdefault(p.envelope["dossier_id"], p.envelope["type"])
        heads = {did: self._cache[did] for did in first if did in self._cache}
        wanted = [
            did
            for did, etype in first.items()
            if did not in heads and (careful or etype != "DossierReceived")
        ]
        heads.update(self._load_heads(wanted))
        return heads

    def _load_heads(self, dossier_ids: list[str]) -> dict[str, _Head]:
        """Fold the stored events of these dossiers (those that exist) into heads."""
        unique = sorted(set(dossier_ids))
        out: dict[str, _Head] = {}
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.recorder.query(
                f"SELECT originator_id, originator_version, state FROM {self._table} "
                f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version",
                chunk,
            )
            for did, version, state in rows:
                head = out.get(did)
                envelope = self.decode(state)
                out[did] = _Head(int(version), evolve(head.state if head else EMPTY, envelope))
        return out

    # --- reading ------------------------------------------------------------

    def get(self, dossier_id: str) -> Dossier:
        try:
            return self.repository.get(dossier_id)
        except AggregateNotFoundError:
            raise DossierNotFound(dossier_id) from None

    @staticmethod
    def decode(state: bytes) -> dict[str, Any]:
        """The envelope inside a stored event's bytes, upcast to the current schema."""
        envelope = orjson.loads(state)["envelope"]
        if envelope.get("schema_version") != SCHEMA_VERSION:
            envelope = upcast(envelope)
        return envelope

    def read(self, after: int = 0, limit: int = 1000, *, upto: int | None = None) -> list[Recorded]:
        """Events with ``after < position (<= upto)``, in ledger order.

        One plain query over the events table's position column (the library's
        notification log, without building its notification objects): replays
        and the relay read the whole log through here.
        """
        pos, decode = self._pos_col, self.decode
        stop, params = (
            ("", [after, limit]) if upto is None else (f"AND {pos} <= ? ", [after, upto, limit])
        )
        rows = self.recorder.query(
            f"SELECT {pos}, originator_version, state FROM {self._table} "
            f"WHERE {pos} > ? {stop}ORDER BY {pos} LIMIT ?",
            params,
        )
        return [Recorded(p, v, decode(state)) for p, v, state in rows]

    def iter_all(
        self, after: int = 0, *, upto: int | None = None, page: int = 5000
    ) -> Iterator[Recorded]:
        while True:
            batch = self.read(after, page, upto=upto)
            if not batch:
                return
            yield from batch
            after = batch[-1].position

    def stored(
        self, after: int = 0, page: int = 5000, *, upto: int | None = None
    ) -> Iterator[tuple[str, int, int, bytes]]:
        """(dossier id, version, position, stored bytes) of every event with ``after <
        position (<= upto)``, in ledger order, read in pages and not decoded: for
        regrouping the log by dossier (:mod:`ledger.dossier_order`)."""
        pos = self._pos_col
        stop, bound = ("", []) if upto is None else (f"AND {pos} <= ? ", [upto])
        while True:
            rows = self.recorder.query(
                f"SELECT originator_id, originator_version, {pos}, state FROM {self._table} "
                f"WHERE {pos} > ? {stop}ORDER BY {pos} LIMIT ?",
                [after, *bound, page],
            )
            if not rows:
                return
            for did, version, position, state in rows:
                yield did, int(version), int(position), bytes(state)
            after = int(rows[-1][2])

    def events_of(self, dossier_id: str) -> list[Recorded]:
        """A dossier's events in chain order, with their ledger positions."""
        rows = self.recorder.query(
            f"SELECT {self._pos_col}, originator_version, state FROM {self._table} "
            "WHERE originator_id = ? ORDER BY originator_version",
            [dossier_id],
        )
        if not rows:
            raise DossierNotFound(dossier_id)
        return [Recorded(p, v, self.decode(s)) for p, v, s in rows]

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def status(self) -> dict[str, int]:
        (events,) = self.recorder.query(f"SELECT COUNT(*) FROM {self._table}")[0]
        (dossiers,) = self.recorder.query(
            f"SELECT COUNT(DISTINCT originator_id) FROM {self._table}"
        )[0]
        return {"events": int(events), "dossiers": int(dossiers), "position": self.max_position()}

    # --- cursors (e.g. the relay's acked position) ---------------------------

    def get_cursor(self, name: str) -> int:
        rows = self.recorder.query("SELECT position FROM ledger_cursors WHERE name = ?", [name])
        return int(rows[0][0]) if rows else 0

    def set_cursor(self, name: str, position: int) -> None:
        self.recorder.query(
            "INSERT INTO ledger_cursors (name, position) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            [name, position],
            commit=True,
        )

    # --- personal data ------------------------------------------------------

    def applicant(self, envelope: dict[str, Any]) -> dict[str, Any] | None:
        """Decrypt a DossierReceived's applicant block (None once shredded)."""
        block = envelope["data"]["applicant"]
        key = self.keys.keys_for([block["pseudonym"]], create=False).get(block["pseudonym"])
        return unseal_applicant(block, key)

    def forget(self, pseudo: str) -> bool:
        """Crypto-shred an applicant: their data becomes unreadable in every event."""
        return self.keys.forget(pseudo)

    # --- raw rows for verification -------------------------------------------

    def stored_rows(self, dossier_id: str | None = None) -> Iterator[hashchain.StoredRow]:
        """Every stored row, decoded defensively, ordered by dossier then version."""
        where, params = ("WHERE originator_id = ? ", [dossier_id]) if dossier_id else ("", [])
        rows = self.recorder.query(
            f"SELECT originator_id, originator_version, {self._pos_col}, topic, state FROM {self._table} "
            f"{where}ORDER BY originator_id, originator_version",
            params,
        )
        for did, version, position, topic, state in rows:
            yield _decode_row(did, int(version), int(position), topic, bytes(state))

    def index_rows(self, dossier_id: str | None = None) -> list[tuple[str, str, int, str]]:
        where, params = ("WHERE dossier_id = ? ", [dossier_id]) if dossier_id else ("", [])
        return [
            (e, d, int(v), t)
            for e, d, v, t in self.recorder.query(
                f"SELECT event_id, dossier_id, version, type FROM ledger_event_index {where}",
                params,
            )
        ]

    def event_hashes(self, upto: int) -> list[tuple[int, str]]:
        """(position, hash) of every event up to a position, in ledger order."""
        out: list[tuple[int, str]] = []
        for rec in self.iter_all(0, upto=upto):
            out.append((rec.position, rec.envelope["hash"]))
        return out


_DOSSIER_TOPIC = get_topic(Dossier)
_OPENED_TOPIC = get_topic(Dossier.Opened)
_RECORDED_TOPIC = get_topic(Dossier.Recorded)
_TOPICS = {_OPENED_TOPIC, _RECORDED_TOPIC}


def _decode_row(
    did: str, version: int, position: int, topic: str, state: bytes
) -> hashchain.StoredRow:
    """Decode a row without trusting it: every byte must be accounted for."""
    try:
        obj = orjson.loads(state)
        if orjson.dumps(obj) != state:  # e.g. 2.0 flipped to 2e0: same value, other bytes
            raise ValueError("stored bytes are not in the form the ledger writes")
        env = obj["envelope"]
        if topic not in _TOPICS:
            raise ValueError(f"unexpected topic {topic!r}")
        ts = obj.get("timestamp")
        if ts != {"_type_": "datetime_iso", "_data_": env["appended_at"]}:
            raise ValueError("library timestamp differs from the envelope's appended_at")
        extra = set(obj) - {"envelope", "timestamp", "originator_topic"}
        if extra:
            raise ValueError(f"unexpected field(s) {sorted(extra)}")
        if (
            "originator_topic" in obj
            and obj["originator_topic"] != f"{Dossier.__module__}:{Dossier.__qualname__}"
        ):
            raise ValueError("unexpected originator_topic")
        return hashchain.StoredRow(position, did, version, env)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return hashchain.StoredRow(position, did, version, None, f"stored bytes do not decode: {e}")
