"""The one event envelope every part of dossier-ledger speaks.

An envelope is a plain dict (JSON object) so that it crosses every boundary
(JSON Lines files, the event store, Kafka, DuckDB) unchanged. This module
validates incoming envelopes, upcasts older schema versions, and declares the
type-specific ``data`` fields in one table (``EVENT_TYPES``) from which the
JSON Schema files under ``ledger/schema/`` are generated.

Pure: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 2
"""Current envelope schema version; older versions are upcast on read."""

CHANNELS = ("direct", "online", "postal")
ONLINE_LEVELS = ("none", "partial", "full")
TIME_UNITS = ("working_days", "working_hours", "calendar_days", "months", "same_day")
ROLES = (
    "applicant",
    "receiver",
    "handler",
    "appraiser",
    "approver",
    "desk_head",
    "agency_head",
    "system",
    "postal",
)

# Fields the ledger sets when it appends an event; never accepted from input.
LEDGER_FIELDS = ("appended_at", "prev_hash", "hash")
ENVELOPE_FIELDS = (
    "event_id",
    "dossier_id",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "data",
    "schema_version",
)


class EnvelopeError(ValueError):
    """An envelope is malformed; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


MAX_SAFE_INTEGER = 2**53 - 1
"""Largest magnitude of any number in an envelope: exact in every JSON reader
(JavaScript, DuckDB doubles) and inside orjson's 64-bit range, so the hashed
form is the stored form."""

INSTANT_PATTERN = (
    r"^(?!.*\n)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""RFC 3339 date-time with a mandatory offset (seconds optional, up to 9
fraction digits). The JSON Schema uses the same pattern; ``validate`` also
checks the calendar (no 30 February)."""

PSEUDONYM_PATTERN = r"^ap-[0-9a-f]{24}$"
SEALED_PATTERN = r"^(?!.*\n)[A-Za-z0-9+/]+={0,2}$"
"""Patterns start with ``(?!.*\n)``: in Python (and so in ``jsonschema``) ``$``
also matches before a final newline."""

# --- field kinds -------------------------------------------------------------
# A field spec is (kind, required). Kinds: "str", "int", "number", "bool",
# "instant", "str_list", "enum:<a|b>", "duration", "party", "applicant".

F = tuple[str, bool]

_PROCESSING_TIME = "duration"
EVENT_TYPES: dict[str, dict[str, F]] = {
    "DossierReceived": {
        "procedure_code": ("str", True),
        "procedure_version": ("str", True),
        "agency": ("str", True),
        "channel": ("enum:" + "|".join(CHANNELS), True),
        "online_level": ("enum:" + "|".join(ONLINE_LEVELS), False),
        "applicant": ("applicant", True),
        "documents": ("str_list", True),
        "processing_time": (_PROCESSING_TIME, True),
        "appointment_at": ("instant", False),
        "rule_set": ("str", False),
        "lead_agency": ("str", False),
        "fee": ("number", False),
    },
    "HandedOver": {
        "from_official": ("str", True),
        "from_agency": ("str", True),
        "to_official": ("str", True),
        "to_agency": ("str", True),
        "step": ("str", True),
        "budget": ("duration", False),
        "acknowledged": ("bool", False),
        "note": ("str", False),
    },
    "StepCompleted": {
        "step": ("str", True),
        "outcome": ("str", False),
        "note": ("str", False),
    },
    "SupplementRequested": {
        "documents": ("str_list", True),
        "reason": ("str", True),
        "stage": ("enum:intake|appraisal", False),
    },
    "SupplementReceived": {
        "documents": ("str_list", True),
        # restart mode (19(4)): the appointment restarted from the complete dossier,
        # as synced to the portal; absent, the ledger computes it from the allowance
        "new_appointment_at": ("instant", False),
    },
    "ClockPaused": {"reason": ("str", True)},
    "ClockResumed": {"reason": ("str", True)},
    "TransferredToAgency": {
        "to_agency": ("str", True),
        "task": ("str", True),
        "budget": ("duration", False),
        "lead_agency": ("str", False),
    },
    "ApologyIssued": {
        "reason": ("str", False),
        "new_appointment_at": ("instant", False),
    },
    "ResultIssued": {
        "decision": ("enum:approved|refused", True),
        "reason": ("str", False),
    },
    "ResultReturned": {"channel": ("enum:" + "|".join(CHANNELS), True)},
    "DossierWithdrawn": {"reason": ("str", False)},
    "FeedbackGiven": {
        "rating": ("int", False),
        "complaint": ("bool", False),
        "comment": ("str", False),
    },
}
"""Type -> data fields. Irregular-but-real conduct (an apology with no reason,
a refusal with no reason) must stay representable, so such fields are optional."""

APPLICANT_FIELDS = ("name", "id_number", "phone", "address")


# --- upcasting ---------------------------------------------------------------

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_V1_CHANNEL_CODES = {
    1: "direct",
    2: "online",
    3: "postal",
    "1": "direct",
    "2": "online",
    "3": "postal",
}


def _upcast_v1(env: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: portal channel codes (1/2/3) became names, and the bare
    ``processing_days`` integer became ``processing_time`` {value, unit}.

    Malformed data is passed through untouched for ``validate`` to name."""
    if not isinstance(env.get("data"), dict):
        return {**env, "schema_version": 2}
    data = dict(env["data"])
    code = data.get("channel")
    if type(code) in (int, str) and code in _V1_CHANNEL_CODES:  # not True == 1
        data["channel"] = _V1_CHANNEL_CODES[code]
    if "processing_days" in data and "processing_time" not in data:
        data["processing_time"] = {"value": data.pop("processing_days"), "unit": "working_days"}
    return {**env, "data": data, "schema_version": 2}


UPCASTERS: dict[int, Upcaster] = {1: _upcast_v1}
"""schema_version -> function lifting an envelope to version + 1."""


def upcast(env: dict[str, Any]) -> dict[str, Any]:
    """Lift an envelope of any supported schema version to ``SCHEMA_VERSION``."""
    version = env.get("schema_version")
    if type(version) is not int:
        raise EnvelopeError("schema_version", f"must be an integer, got {version!r}")
    if version > SCHEMA_VERSION or (version < SCHEMA_VERSION and version not in UPCASTERS):
        raise EnvelopeError(
            "schema_version",
            f"unsupported version {version} (supported: "
            f"{', '.join(str(v) for v in sorted([*UPCASTERS, SCHEMA_VERSION]))})",
        )
    while version < SCHEMA_VERSION:
        env = UPCASTERS[version](env)
        version = env["schema_version"]
    return env


# --- validation --------------------------------------------------------------

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN[1:-1])
_INSTANT = re.compile(INSTANT_PATTERN[1:-1])
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN[1:-1])
_SEALED = re.compile(SEALED_PATTERN[1:-1])


def parse_instant(value: Any, field: str) -> datetime:
    """An RFC 3339 instant that carries its UTC offset (naive times are ambiguous)."""
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        raise EnvelopeError(
            field,
            f"must be an ISO 8601 instant with a UTC offset "
            f"(YYYY-MM-DDTHH:MM[:SS[.fff]]+HH:MM or Z), got {value!r}",
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError as e:
        raise EnvelopeError(field, f"not a valid instant: {value!r} ({e})") from None


def _str(path: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise EnvelopeError(path, f"must be a non-empty string, got {value!r}")


def _in_range(value: int | float) -> bool:
    return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER  # False for NaN too


def _int(path: str, value: Any) -> int | None:
    """An integer; ``5.0`` is the same JSON number as ``5`` and is stored as ``5``."""
    if type(value) is float and value.is_integer():
        if not _in_range(value):
            raise EnvelopeError(path, f"must be at most {MAX_SAFE_INTEGER} in magnitude")
        return int(value)
    if type(value) is not int:
        raise EnvelopeError(path, f"must be an integer, got {value!r}")
    if not _in_range(value):
        raise EnvelopeError(path, f"must be at most {MAX_SAFE_INTEGER} in magnitude")
    return None


def _number(path: str, value: Any) -> None:
    if type(value) not in (int, float):
        raise EnvelopeError(path, f"must be a number, got {value!r}")
    if not _in_range(value) or value < 0:
        raise EnvelopeError(path, f"must be between 0 and {MAX_SAFE_INTEGER}, got {value!r}")


def _bool(path: str, value: Any) -> None:
    if type(value) is not bool:
        raise EnvelopeError(path, f"must be true or false, got {value!r}")


def _str_list(path: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise EnvelopeError(path, "must be a list of non-empty strings")


_DURATION_KEYS = frozenset({"value", "unit"})


def _duration(path: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise EnvelopeError(path, "must be an object {value, unit}")
    unknown = value.keys() - _DURATION_KEYS
    if unknown:
        raise EnvelopeError(path, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    unit = value.get("unit")
    if unit not in TIME_UNITS:
        raise EnvelopeError(f"{path}.unit", f"must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
    amount = value.get("value")
    if amount is None and unit == "same_day":  # "same day" needs no amount
        return
    if type(amount) not in (int, float) or not _in_range(amount) or amount < 0:
        raise EnvelopeError(
            f"{path}.value", f"must be a number between 0 and {MAX_SAFE_INTEGER}, got {amount!r}"
        )


_SEALED_KEYS = frozenset({"pseudonym", "sealed"})


def _applicant(path: str, value: Any) -> None:
    """Personal data in clear (the ledger seals it), or a block the ledger sealed.

    A sealed block must be exactly ``{pseudonym, sealed}``: anything else could
    carry personal data past the encryption."""
    if not isinstance(value, dict):
        raise EnvelopeError(path, "must be an object")
    if "sealed" in value:
        unknown = value.keys() - _SEALED_KEYS
        if unknown:
            raise EnvelopeError(
                path, f"a sealed block holds only pseudonym and sealed, not {sorted(unknown)}"
            )
        for key, pattern in (("pseudonym", _PSEUDONYM), ("sealed", _SEALED)):
            if not isinstance(value.get(key), str) or not pattern.fullmatch(value[key]):
                raise EnvelopeError(f"{path}.{key}", f"malformed: {value.get(key)!r}")
        return
    for key in ("name", "id_number"):
        if value.get(key) is None:
            raise EnvelopeError(f"{path}.{key}", "missing (required)")
        _str(f"{path}.{key}", value[key])
    for key in ("phone", "address"):
        if value.get(key) is not None:
            _str(f"{path}.{key}", value[key])
    unknown = value.keys() - set(APPLICANT_FIELDS)
    if unknown:
        raise EnvelopeError(path, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")


def _enum(allowed: tuple[str, ...]) -> Callable[[str, Any], None]:
    def check(path: str, value: Any) -> None:
        if value not in allowed:
            raise EnvelopeError(path, f"must be one of {', '.join(allowed)}, got {value!r}")

    return check


_KINDS: dict[str, Callable[[str, Any], Any]] = {
    "str": _str,
    "int": _int,
    "number": _number,
    "bool": _bool,
    "instant": lambda path, value: None if parse_instant(value, path) else None,
    "str_list": _str_list,
    "duration": _duration,
    "applicant": _applicant,
}


def _checker(kind: str) -> Callable[[str, Any], Any]:
    return _enum(tuple(kind[5:].split("|"))) if kind.startswith("enum:") else _KINDS[kind]


# A checker raises EnvelopeError, or returns a normalised value (None: keep as is).
_COMPILED: dict[str, tuple[tuple[str, str, Callable[[str, Any], Any], bool], ...]] = {
    etype: tuple(
        (name, f"data.{name}", _checker(kind), required) for name, (kind, required) in spec.items()
    )
    for etype, spec in EVENT_TYPES.items()
}
_ROLES = frozenset(ROLES)
_ENVELOPE_KEYS = frozenset(ENVELOPE_FIELDS)
_ENVELOPE_KEYS_UNRECORDED = _ENVELOPE_KEYS - {"recorded_at"}
_ACTOR_KEYS = frozenset({"id", "role", "agency"})


def validate(raw: Any) -> dict[str, Any]:
    """Check an incoming envelope and return it upcast to the current schema.

    Raises :class:`EnvelopeError` naming the first offending field. Ledger-set
    fields (``appended_at``, ``prev_hash``, ``hash``) are refused on input:
    only the ledger may write them.
    """
    if not isinstance(raw, dict):
        raise EnvelopeError("envelope", f"must be a JSON object, got {type(raw).__name__}")
    keys = raw.keys()
    if keys != _ENVELOPE_KEYS and keys != _ENVELOPE_KEYS_UNRECORDED:  # say what is wrong
        for key in ENVELOPE_FIELDS:
            if key not in raw and key != "recorded_at":
                raise EnvelopeError(key, "missing")
        for key in LEDGER_FIELDS:
            if key in raw:
                raise EnvelopeError(key, "is set by the ledger and must not be supplied")
        unknown = keys - _ENVELOPE_KEYS
        names = ", ".join(sorted(map(str, unknown)))
        raise EnvelopeError("envelope", f"unknown field(s): {names}")
    version = raw["schema_version"]
    current = type(version) is int and version == SCHEMA_VERSION
    env = dict(raw) if current else upcast(dict(raw))
    if not isinstance(env["event_id"], str) or not _UUID.fullmatch(env["event_id"]):
        raise EnvelopeError("event_id", f"must be a UUID string, got {env['event_id']!r}")
    _str("dossier_id", env["dossier_id"])
    etype = env["type"]
    spec = _COMPILED.get(etype) if isinstance(etype, str) else None
    if spec is None:
        raise EnvelopeError(
            "type", f"unknown event type {etype!r} (known: {', '.join(EVENT_TYPES)})"
        )
    parse_instant(env["occurred_at"], "occurred_at")
    if env.get("recorded_at") is not None:
        parse_instant(env["recorded_at"], "recorded_at")
    actor = env["actor"]
    if not isinstance(actor, dict):
        raise EnvelopeError("actor", "must be an object {id, role, agency}")
    for key in ("id", "role", "agency"):
        _str(f"actor.{key}", actor.get(key))
    if len(actor) != 3:
        unknown = ", ".join(sorted(map(str, actor.keys() - _ACTOR_KEYS)))
        raise EnvelopeError("actor", f"unknown field(s): {unknown}")
    if actor["role"] not in _ROLES:
        raise EnvelopeError(
            "actor.role", f"must be one of {', '.join(ROLES)}, got {actor['role']!r}"
        )
    data = env["data"]
    if not isinstance(data, dict):
        raise EnvelopeError("data", "must be an object")
    for name, path, check_value, required in spec:
        value = data.get(name)
        if value is None:
            if required:
                raise EnvelopeError(path, f"missing (required for {etype})")
            continue
        normalised = check_value(path, value)
        if normalised is not None:
            data = env["data"] = {**data, name: normalised}
    unknown = data.keys() - EVENT_TYPES[etype].keys()
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise EnvelopeError("data", f"unknown field(s) for {etype}: {names}")
    return env


@dataclass(frozen=True, slots=True)
class Recorded:
    """An envelope as the ledger stored it, with its position in the ledger.

    ``position`` is the store's notification id: global, gap-free on SQLite,
    increasing (possibly with gaps) on PostgreSQL. It is the dedupe key every
    downstream consumer honours.
    """

    position: int
    version: int
    envelope: dict[str, Any]

    @property
    def type(self) -> str:
        return self.envelope["type"]

    @property
    def dossier_id(self) -> str:
        return self.envelope["dossier_id"]
