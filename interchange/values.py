"""Log values as ledger values, and a mapping compiled into getters (pure).

A *getter* reads one ledger field from a case's or an event's attributes
through its spec (attribute or constant, map, default) and converts it to the
field's kind: instants (naive ones in the mapping's time zone), durations,
lists, numbers, booleans, strings. :class:`Plan` holds every getter of a
mapping, built once per import, since an import calls them for every field of
every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from interchange.mapping import MISSING, MapError, Mapping, Spec
from ledger.domain.durations import Duration
from ledger.domain.events import EVENT_TYPES, TIME_UNITS


def instant(value: Any, tz: tzinfo, fmt: str | None = None) -> datetime:
    """An aware datetime from a log's timestamp (naive ones are in ``tz``)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            dt = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
        except ValueError:
            raise MapError(f"not a timestamp: {value!r}") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=tz)
    return dt


def _duration(value: Any, spec: Spec) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if spec.unit is not None:
        try:
            amount = float(value)
        except (TypeError, ValueError):
            raise MapError(f"{spec.where}: not a number: {value!r}") from None
        return Duration(amount, spec.unit).to_json()
    text = str(value).strip()
    parts = text.split()
    try:
        if len(parts) == 2 and parts[1] in TIME_UNITS:  # "30 calendar_days"
            return Duration(float(parts[0]), parts[1]).to_json()
        return Duration.parse(text).to_json()  # "3wd", "10d"
    except ValueError:
        raise MapError(
            f"{spec.where}: not a duration: {value!r} (give unit, or '30 calendar_days', '3wd')"
        ) from None


def _convert(kind: str, value: Any, spec: Spec, mapping: Mapping) -> Any:
    """A source value as a value of the ledger field kind ``kind``."""
    if kind == "instant":
        return instant(value, mapping.timezone, mapping.time_format).isoformat()
    if kind == "duration":
        return _duration(value, spec)
    if kind == "str_list":
        if isinstance(value, list):
            return [str(v) for v in value if str(v)]
        parts = str(value).split(spec.split) if spec.split else [str(value)]
        return [p.strip() for p in parts if p.strip()]
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise MapError(f"{spec.where}: not an integer: {value!r}") from None
    if kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MapError(f"{spec.where}: not a number: {value!r}") from None
        return int(number) if number.is_integer() else number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise MapError(f"{spec.where}: not a boolean: {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


_DOSSIER_KINDS = {
    **{k: kind for k, (kind, _) in EVENT_TYPES["DossierReceived"].items()},
    "id": "str",
    "received_at": "instant",
    "resolved_at": "instant",
    "decision": "str",
    "applicant_id": "str",
    "applicant_name": "str",
}


def _kind(kind: str) -> str:
    return "str" if kind.startswith("enum:") else kind


def _is_rfc3339(v: str) -> bool:
    """Already in the ledger's instant form ``YYYY-MM-DDTHH:MM:SS±HH:MM`` (kept as written;
    the ledger's ``validate`` still checks the calendar)."""
    return (
        len(v) == 25
        and v[10] == "T"
        and v[19] in "+-"
        and v[22] == ":"
        and v[13] == ":"
        and v[16] == ":"
        and v[4] == "-"
        and v[7] == "-"
    )


Getter = Callable[[dict[str, Any]], Any]


def _missing(attrs: dict[str, Any]) -> Any:
    return MISSING


def getter(spec: Spec | None, kind: str, mapping: Mapping) -> Getter:
    """A function from a case's or event's attributes to the mapped value (or MISSING).

    Built once per mapping: the common specs (an attribute, no map or default)
    take a short path, since an import calls these for every field of every event.
    """
    if spec is None:
        return _missing
    kind = _kind(kind)

    def convert(value: Any) -> Any:
        try:
            return _convert(kind, value, spec, mapping)
        except MapError as e:
            raise MapError(e.args[0] if spec.where in e.args[0] else f"{spec.where}: {e}") from None

    attr = spec.attr
    if attr is not None and spec.map is None and kind == "str":
        absent = MISSING if spec.default is MISSING else convert(spec.default)

        def get_str(a: dict[str, Any]) -> Any:
            v = a.get(attr)
            if v is None or v == "":
                return absent
            return v if type(v) is str else convert(v)

        return get_str
    if attr is not None and spec.map is None and spec.default is MISSING:
        if kind == "instant" and mapping.time_format is None:

            def get_instant(a: dict[str, Any]) -> Any:
                v = a.get(attr)
                if v is None or v == "":
                    return MISSING
                return v if type(v) is str and _is_rfc3339(v) else convert(v)

            return get_instant

    def get(a: dict[str, Any]) -> Any:
        v = spec.get(a)
        return MISSING if v is MISSING else convert(v)

    return get


@dataclass
class Plan:
    """A mapping compiled into getters, once per import."""

    dossier: list[tuple[str, Getter]]
    at: Getter
    step: Getter
    type: Getter | None
    actor: Getter
    role: Getter
    agency: Getter
    recorded_at: Getter
    data: dict[str, list[tuple[str, Getter]]]  # event type -> [event.data] getters
    rules: dict[str, tuple[str, list[tuple[str, Getter]]]]  # activity -> (type, getters)

    @classmethod
    def of(cls, mapping: Mapping) -> Plan:
        hit = _PLANS.get(id(mapping))
        if hit is not None and hit[0] is mapping:
            return hit[1]
        ev = mapping.event

        def data_getters(specs: dict[str, Spec], etype: str) -> list[tuple[str, Getter]]:
            fields = EVENT_TYPES[etype]
            return [
                (name, getter(spec, fields[name][0], mapping))
                for name, spec in specs.items()
                if name in fields
            ]

        plan = cls(
            dossier=[
                (name, getter(spec, _DOSSIER_KINDS[name], mapping))
                for name, spec in mapping.dossier.items()
            ],
            at=getter(ev["at"], "instant", mapping),
            step=getter(ev["step"], "str", mapping),
            type=getter(ev["type"], "str", mapping) if "type" in ev else None,
            actor=getter(ev.get("actor"), "str", mapping),
            role=getter(ev.get("role"), "str", mapping),
            agency=getter(ev.get("agency"), "str", mapping),
            recorded_at=getter(ev.get("recorded_at"), "instant", mapping),
            data={t: data_getters(mapping.event_data, t) for t in EVENT_TYPES},
            rules={
                activity: (rule.type, data_getters(rule.data, rule.type))
                for activity, rule in mapping.types.items()
            },
        )
        if len(_PLANS) > 64:
            _PLANS.clear()
        _PLANS[id(mapping)] = (mapping, plan)
        return plan


_PLANS: dict[int, tuple[Mapping, Plan]] = {}
