"""The ledger: ``DossierLedger``, an eventsourcing application of ``Dossier`` aggregates.

Appending is its write path (:mod:`ledger.write_path`); here are its construction and
its reads: dossiers, the log in ledger order, cursors, personal data, and the raw
rows that verification checks byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Transcoder

from ledger.aggregate import (
    DOSSIER_TOPIC,
    OPENED_TOPIC,
    RECORDED_TOPIC,
    Dossier,
    DossierNotFound,
    OrjsonTranscoder,
)
from ledger.domain import hashchain
from ledger.domain.events import SCHEMA_VERSION, Recorded, upcast
from ledger.domain.privacy import KeyStore, unseal_applicant
from ledger.domain.rules import RuleBook
from ledger.write_path import WritePath

SQLITE_RECORDER = "ledger.sqlite_store:LedgerSQLiteRecorder"
POSTGRES_RECORDER = "ledger.postgres_store:LedgerPostgresRecorder"


class DossierLedger(WritePath, Application[str]):
    """Use cases of the ledger: append, read, verify, digest, forget."""

    name = "DossierLedger"
    env = {"ORIGINATOR_ID_TYPE": "text", "AGGREGATE_CACHE_MAXSIZE": ""}

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
        self._cache = {}  # the write path's stream heads (see WritePath)

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

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
            yield decode_stored_row(did, int(version), int(position), topic, bytes(state))

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


_TOPICS = {OPENED_TOPIC, RECORDED_TOPIC}


def decode_stored_row(
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
        if "originator_topic" in obj and obj["originator_topic"] != DOSSIER_TOPIC:
            raise ValueError("unexpected originator_topic")
        return hashchain.StoredRow(position, did, version, env)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return hashchain.StoredRow(position, did, version, None, f"stored bytes do not decode: {e}")
