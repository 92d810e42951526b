"""The write path: how ``DossierLedger`` appends a batch of envelopes.

Every accepted envelope becomes one stored event of its dossier's aggregate,
sealed into the dossier's hash chain, with its applicant block encrypted. A
batch is judged event by event (bad ones are refused with a reason, good ones
kept) and the accepted events are saved in one transaction, together with
their rows in the event index. Optimistic-concurrency conflicts with another
writer are retried from fresh state, never surfaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger.aggregate import DOSSIER_TOPIC, OPENED_TOPIC, RECORDED_TOPIC
from ledger.domain import hashchain
from ledger.domain.events import EnvelopeError, Recorded, parse_instant, validate
from ledger.domain.lifecycle import EMPTY, ImpossibleEvent, Lifecycle, check, evolve
from ledger.domain.privacy import KeyStore, new_key, pseudonym, seal_applicant
from ledger.domain.rules import NoRuleSetForDossier, NoRuleSetInForce, RuleBook
from ledger.gc_pause import paused_gc


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


class WritePath:
    """``append`` and ``append_batch`` of :class:`ledger.application.DossierLedger`.

    A mixin rather than a collaborator: the write path works on the application's own
    recorder, rule book, key store and stored-event decoding, and its retries must
    see the same recorder the reads use, so it stays one object with them; the
    methods only live apart from the reads. The host provides the attributes below
    and sets ``_cache`` to an empty dict.
    """

    max_conflict_retries = 20
    cache_limit = 200_000

    recorder: Any  # the application's recorder (``ledger.sqlite_store`` / ``postgres_store``)
    rules: RuleBook
    keys: KeyStore
    _secret: bytes
    _table: str  # the events table, qualified
    decode: Callable[[bytes], dict[str, Any]]  # a stored event's envelope
    _cache: dict[str, _Head]
    """Stream heads as last saved by this process; a stale one only causes a version
    conflict, which clears the cache and retries."""

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
                "originator_topic": DOSSIER_TOPIC,
                "envelope": envelope,
            }
            topic = OPENED_TOPIC
        else:
            state = {"timestamp": timestamp, "envelope": envelope}
            topic = RECORDED_TOPIC
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
