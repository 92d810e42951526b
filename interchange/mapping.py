"""The mapping file: how a case log's cases and events become ledger envelopes.

A mapping is TOML (``dossier import LOG --mapping MAP.toml``)::

    [source]
    format = "xes"                       # xes | csv
    timezone = "Europe/Paris"            # for timestamps without an offset
    # csv only: delimiter = ",", case = "case:concept:name"

    [dossier]                            # one dossier per case
    id = { attr = "concept:name" }
    received_at = { attr = "start" }
    channel = { attr = "via", map = { Web = "online" }, default = "direct" }
    processing_time = { value = 30, unit = "calendar_days" }
    ...

    [event]                              # one event per log event
    at = { attr = "time:timestamp" }
    actor = { attr = "org:resource", default = "unknown" }
    step = { attr = "concept:name" }

    [[event.types]]                      # an activity that is a lifecycle event
    activity = "Send supplement request"
    type = "SupplementRequested"

A *spec* is ``{attr = NAME}`` (a case attribute for ``[dossier]``, an event
attribute for ``[event]``; a CSV column) or ``{value = X}`` (a constant), with
optional ``map`` (source value -> ledger value), ``default`` (when the attribute
is absent or empty, or its value is not in ``map``), ``unit`` (durations) and
``split`` (lists from one string). The full reference is docs/import.md.

Pure apart from :func:`load_mapping`, which reads the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.domain.events import EVENT_TYPES, TIME_UNITS

FORMATS = ("xes", "csv")
MISSING: Any = object()
"""A spec's value when the attribute is absent and there is no default."""

DOSSIER_FIELDS = (
    "id",
    "received_at",
    "appointment_at",
    "resolved_at",
    "decision",
    "procedure_code",
    "procedure_version",
    "agency",
    "channel",
    "online_level",
    "processing_time",
    "rule_set",
    "lead_agency",
    "fee",
    "documents",
    "applicant_id",
    "applicant_name",
)
DOSSIER_REQUIRED = (
    "id",
    "procedure_code",
    "procedure_version",
    "agency",
    "channel",
    "processing_time",
)
EVENT_FIELDS = ("at", "actor", "role", "agency", "step", "type", "recorded_at")
EVENT_REQUIRED = ("at", "step")
_SPEC_KEYS = frozenset({"attr", "value", "map", "default", "unit", "split"})
_DATA_FIELDS = frozenset(f for spec in EVENT_TYPES.values() for f in spec) - {"applicant"}


class MappingError(ValueError):
    """The mapping file is wrong; the message names the file and the key."""


class MapError(ValueError):
    """One case's value cannot be mapped (the case is reported and skipped)."""


@dataclass(frozen=True)
class Spec:
    """Where one ledger field comes from: an attribute or a constant."""

    where: str
    attr: str | None = None
    value: Any = MISSING
    map: dict[str, Any] | None = None
    default: Any = MISSING
    unit: str | None = None
    split: str | None = None

    def get(self, attrs: dict[str, Any]) -> Any:
        """The field's value for a case or event with these attributes (or MISSING)."""
        if self.attr is None:
            raw = self.value
        else:
            raw = attrs.get(self.attr)
            if raw is None or raw == "":
                return self.default
        if self.map is not None:
            hit = self.map.get(raw if isinstance(raw, str) else str(raw), MISSING)
            if hit is not MISSING:
                return hit
            if self.default is not MISSING:
                return self.default
            raise MapError(
                f"{self.where}: {self.attr or 'value'} {raw!r} is not in map "
                f"(known: {', '.join(sorted(self.map))})"
            )
        return raw


@dataclass(frozen=True)
class TypeRule:
    """An activity mapped to a lifecycle event type, with its own data specs."""

    type: str
    data: dict[str, Spec] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapping:
    format: str
    timezone: ZoneInfo
    dossier: dict[str, Spec]
    event: dict[str, Spec]
    event_data: dict[str, Spec] = field(default_factory=dict)
    types: dict[str, TypeRule] = field(default_factory=dict)
    delimiter: str = ","
    case: str = "case:concept:name"
    time_format: str | None = None
    encoding: str = "utf-8-sig"


def _spec(raw: Any, where: str) -> Spec:
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected {{attr = NAME}} or {{value = X}}, got {raw!r}")
    unknown = set(raw) - _SPEC_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if ("attr" in raw) == ("value" in raw):
        raise MappingError(f"{where}: give exactly one of attr and value")
    if "attr" in raw and (not isinstance(raw["attr"], str) or not raw["attr"]):
        raise MappingError(f"{where}.attr: expected an attribute name")
    if "map" in raw and not isinstance(raw["map"], dict):
        raise MappingError(f"{where}.map: expected a table of source value = ledger value")
    if "unit" in raw and raw["unit"] not in TIME_UNITS:
        raise MappingError(f"{where}.unit: one of {', '.join(TIME_UNITS)}, got {raw['unit']!r}")
    if "split" in raw and (not isinstance(raw["split"], str) or not raw["split"]):
        raise MappingError(f"{where}.split: expected a separator string")
    return Spec(
        where=where,
        attr=raw.get("attr"),
        value=raw.get("value", MISSING),
        map={str(k): v for k, v in raw["map"].items()} if "map" in raw else None,
        default=raw.get("default", MISSING),
        unit=raw.get("unit"),
        split=raw.get("split"),
    )


def _table(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected a table")
    return raw


def _data_specs(raw: Any, where: str) -> dict[str, Spec]:
    table = _table(raw, where)
    unknown = set(table) - _DATA_FIELDS
    if unknown:
        raise MappingError(
            f"{where}: unknown data field(s) {', '.join(sorted(unknown))} "
            "(see the event types in docs/events.md)"
        )
    return {k: _spec(v, f"{where}.{k}") for k, v in table.items()}


def parse_mapping(raw: dict[str, Any], name: str = "mapping") -> Mapping:
    """A :class:`Mapping` from a parsed TOML document; MappingError names what is wrong."""
    unknown = set(raw) - {"source", "dossier", "event"}
    if unknown:
        raise MappingError(f"{name}: unknown table(s) {', '.join(sorted(unknown))}")
    source = _table(raw.get("source"), f"{name}: [source]")
    extra = set(source) - {"format", "timezone", "delimiter", "case", "time_format", "encoding"}
    if extra:
        raise MappingError(f"{name}: [source]: unknown key(s) {', '.join(sorted(extra))}")
    fmt = source.get("format")
    if fmt not in FORMATS:
        raise MappingError(f"{name}: [source].format: one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        tz = ZoneInfo(str(source.get("timezone", "UTC")))
    except (ValueError, ZoneInfoNotFoundError):
        raise MappingError(
            f"{name}: [source].timezone: unknown time zone {source.get('timezone')!r}"
        ) from None
    delimiter = source.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise MappingError(f"{name}: [source].delimiter: expected one character")

    dossier_raw = _table(raw.get("dossier"), f"{name}: [dossier]")
    extra = set(dossier_raw) - set(DOSSIER_FIELDS)
    if extra:
        raise MappingError(
            f"{name}: [dossier]: unknown field(s) {', '.join(sorted(extra))} "
            f"(known: {', '.join(DOSSIER_FIELDS)})"
        )
    missing = [k for k in DOSSIER_REQUIRED if k not in dossier_raw]
    if missing:
        raise MappingError(f"{name}: [dossier]: missing {', '.join(missing)}")
    dossier = {k: _spec(v, f"[dossier].{k}") for k, v in dossier_raw.items()}

    event_raw = dict(_table(raw.get("event"), f"{name}: [event]"))
    types_raw = event_raw.pop("types", [])
    data_raw = event_raw.pop("data", None)
    extra = set(event_raw) - set(EVENT_FIELDS)
    if extra:
        raise MappingError(
            f"{name}: [event]: unknown field(s) {', '.join(sorted(extra))} "
            f"(known: {', '.join(EVENT_FIELDS)}, data, types)"
        )
    missing = [k for k in EVENT_REQUIRED if k not in event_raw]
    if missing:
        raise MappingError(f"{name}: [event]: missing {', '.join(missing)}")
    event = {k: _spec(v, f"[event].{k}") for k, v in event_raw.items()}
    event_data = _data_specs(data_raw, "[event.data]")

    if not isinstance(types_raw, list):
        raise MappingError(f"{name}: [[event.types]]: expected an array of tables")
    types: dict[str, TypeRule] = {}
    for i, entry in enumerate(types_raw):
        where = f"{name}: [[event.types]][{i}]"
        if not isinstance(entry, dict):
            raise MappingError(f"{where}: expected a table")
        extra = set(entry) - {"activity", "type", "data"}
        if extra:
            raise MappingError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        activity, etype = entry.get("activity"), entry.get("type")
        if not isinstance(activity, str) or not activity:
            raise MappingError(f"{where}.activity: expected the activity's name")
        if etype not in EVENT_TYPES:
            raise MappingError(f"{where}.type: one of {', '.join(EVENT_TYPES)}, got {etype!r}")
        if activity in types:
            raise MappingError(f"{where}.activity: {activity!r} is mapped twice")
        types[activity] = TypeRule(etype, _data_specs(entry.get("data"), f"{where}.data"))

    return Mapping(
        format=fmt,
        timezone=tz,
        dossier=dossier,
        event=event,
        event_data=event_data,
        types=types,
        delimiter=delimiter,
        case=str(source.get("case", "case:concept:name")),
        time_format=source.get("time_format"),
        encoding=str(source.get("encoding", "utf-8-sig")),
    )


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise MappingError(f"{path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MappingError(f"{path}: not valid TOML: {e}") from None
    return parse_mapping(raw, str(path))
