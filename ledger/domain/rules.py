"""Rules as dated configuration: every parameter of the law, with effective dates.

A dossier is judged by the rule set in force at its receipt; the ledger pins
the rule set id in ``DossierReceived.data.rule_set``, so a later change of the
rules never re-judges old dossiers. Parameters the domain brief marks as
unconfirmed are listed in ``RuleSet.uncertain``.

Pure apart from :func:`load_rules`, which reads the YAML files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.domain.durations import Duration
from ledger.domain.events import EnvelopeError

PACKAGED_RULES = "rulesets.yaml"
PACKAGED_OVERRIDES = "calendar-overrides.yaml"
SUPPLEMENT_MODES = ("restart", "pause")
GRANULARITIES = ("date", "minutes")


class RulesError(ValueError):
    """A rules or calendar file is malformed; the message names the entry and field."""


class NoRuleSetInForce(RulesError):
    """No rule set covers a day (a dossier received before, or between, every rule set)."""

    def __init__(self, day: date) -> None:
        super().__init__(f"no rule set is in force on {day.isoformat()}")
        self.day = day


class NoRuleSetForDossier(EnvelopeError):
    """A receipt names no rule set and none is in force on its day: it cannot be judged."""

    def __init__(self, dossier_id: str, day: str) -> None:
        super().__init__(
            "data.rule_set",
            f"no rule set in force on {day}; give data.rule_set or a rules file "
            "(DOSSIER_RULES) that covers it",
        )
        self.args = (f"dossier {dossier_id}: {self.reason}",)


@dataclass(frozen=True)
class CalendarOverrides:
    """A province's own decisions over the national calendar."""

    days_off: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()


@dataclass(frozen=True)
class RuleSet:
    """All rule parameters of one legal regime, valid over a date range."""

    id: str
    legal_basis: str
    effective_from: date
    effective_to: date | None
    timezone: str = "Asia/Ho_Chi_Minh"
    office_hours: tuple[tuple[time, time], ...] = (
        (time(7, 30), time(11, 30)),
        (time(13, 30), time(17, 0)),
    )
    agency_office_hours: Mapping[str, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    working_weekdays: frozenset[int] = frozenset(range(5))
    saturday_reception: bool = False
    forwarding_cutoff: time = time(15, 0)
    forwarding_grace: Duration = Duration(2, "working_hours")
    apology_lead: Duration = Duration(1, "working_days")
    reschedule_limit: int = 1
    supplement_mode: str = "restart"
    supplement_request_window: Duration = Duration(3, "working_days")
    max_supplement_requests: int = 1
    ordering_tolerance: timedelta = timedelta(hours=24)
    backdating_tolerance_system: Duration = Duration(15, "minutes")
    backdating_tolerance_paper: Duration = Duration(1, "working_days")
    granularity: str = "date"
    separation_of_duties: bool = True
    idle_thresholds: tuple[float, ...] = (0.5, 0.75, 1.0)
    duty_schedules: Mapping[str, frozenset[int]] = field(default_factory=dict)
    """Agency (or sector) -> weekdays (0 = Monday) its officials are on duty at the desk."""
    holidays: str = "VN"
    """Country code of the national public holidays (the ``holidays`` package), or ``none``."""
    uncertain: tuple[str, ...] = ()
    calendar: CalendarOverrides = CalendarOverrides()

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def hours_for(self, agency: str | None) -> tuple[tuple[time, time], ...]:
        """Office hours of an agency (its own, else the rule set's default)."""
        if agency is not None and agency in self.agency_office_hours:
            return self.agency_office_hours[agency]
        return self.office_hours


@dataclass(frozen=True)
class RuleBook:
    """Every rule set, ordered by effective date, without overlaps."""

    rule_sets: tuple[RuleSet, ...]

    def __post_init__(self) -> None:
        if not self.rule_sets:
            raise RulesError("no rule sets")
        ordered = sorted(self.rule_sets, key=lambda r: r.effective_from)
        seen: set[str] = set()
        for r in ordered:
            if r.id in seen:
                raise RulesError(f"rule set {r.id} is defined twice")
            seen.add(r.id)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a.effective_to is None or a.effective_to >= b.effective_from:
                raise RulesError(f"rule sets {a.id} and {b.id} overlap")
        object.__setattr__(self, "rule_sets", tuple(ordered))
        object.__setattr__(self, "_by_id", {r.id: r for r in ordered})

    def get(self, rule_set_id: str) -> RuleSet:
        """The rule set with this id; KeyError if there is none."""
        return self._by_id[rule_set_id]  # type: ignore[attr-defined]

    def in_force(self, at: datetime | date) -> RuleSet:
        """The rule set in force on the local date of ``at`` (the receipt instant),
        each rule set's dates read in its own time zone.

        Raises :class:`NoRuleSetInForce` for a day no rule set covers."""
        if isinstance(at, datetime):
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError(
                    f"in_force: naive datetime {at.isoformat()} (an offset is required)"
                )
            for rule_set in reversed(self.rule_sets):
                if rule_set.covers(at.astimezone(ZoneInfo(rule_set.timezone)).date()):
                    return rule_set
            raise NoRuleSetInForce(at.astimezone(ZoneInfo(self.rule_sets[-1].timezone)).date())
        for rule_set in reversed(self.rule_sets):
            if rule_set.covers(at):
                return rule_set
        raise NoRuleSetInForce(at)

    @property
    def latest(self) -> RuleSet:
        return self.rule_sets[-1]


# --- loading -----------------------------------------------------------------


def _time(value: Any, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        hint = (
            " (YAML reads an unquoted 15:00 as the number 900: quote times)"
            if isinstance(value, int)
            else ""
        )
        raise RulesError(f"{where}: not a time of day (HH:MM): {value!r}{hint}") from None


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RulesError(f"{where}: not a date (YYYY-MM-DD): {value!r}") from None


def _duration(value: Any, where: str) -> Duration:
    try:
        return Duration.parse(value)
    except (ValueError, KeyError) as exc:
        raise RulesError(f"{where}: {exc}") from None


def _hours(value: Any, where: str) -> tuple[tuple[time, time], ...]:
    try:
        spans = tuple((_time(a, where), _time(b, where)) for a, b in value)
    except RulesError:
        raise
    except (TypeError, ValueError):
        raise RulesError(f"{where}: expected a list of [start, end] pairs") from None
    if (
        not spans
        or any(a >= b for a, b in spans)
        or any(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1))
    ):
        raise RulesError(f"{where}: office hours must be ordered, non-empty, non-overlapping spans")
    return spans


def _weekdays(value: Any, where: str) -> frozenset[int]:
    if not isinstance(value, list) or not all(type(d) is int and 0 <= d <= 6 for d in value):
        raise RulesError(f"{where}: expected a list of weekdays 0 (Monday) .. 6 (Sunday)")
    return frozenset(value)


def parse_rule_set(raw: Mapping[str, Any], calendar: CalendarOverrides) -> RuleSet:
    if not isinstance(raw, Mapping):
        raise RulesError(f"rule set entry: expected a mapping of parameters, got {raw!r}")
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise RulesError("rule set without an id")
    w = f"rule set {rid}"
    known = set(RuleSet.__dataclass_fields__) - {"calendar"}
    unknown = set(raw) - known
    if unknown:
        raise RulesError(f"{w}: unknown parameter(s) {', '.join(sorted(unknown))}")
    kw: dict[str, Any] = {
        "id": rid,
        "legal_basis": str(raw.get("legal_basis", "")),
        "effective_from": _date(raw.get("effective_from"), f"{w}.effective_from"),
        "effective_to": None
        if raw.get("effective_to") is None
        else _date(raw["effective_to"], f"{w}.effective_to"),
        "calendar": calendar,
    }
    simple = {
        "timezone": str,
        "holidays": str,
        "saturday_reception": bool,
        "reschedule_limit": int,
        "max_supplement_requests": int,
        "separation_of_duties": bool,
    }
    for key, kind in simple.items():
        if key in raw:
            if not isinstance(raw[key], kind):
                raise RulesError(f"{w}.{key}: expected {kind.__name__}, got {raw[key]!r}")
            kw[key] = raw[key]
    for key in (
        "forwarding_grace",
        "apology_lead",
        "supplement_request_window",
        "backdating_tolerance_system",
        "backdating_tolerance_paper",
    ):
        if key in raw:
            kw[key] = _duration(raw[key], f"{w}.{key}")
    if "ordering_tolerance" in raw:
        kw["ordering_tolerance"] = _duration(
            raw["ordering_tolerance"], f"{w}.ordering_tolerance"
        ).as_timedelta()
    if "office_hours" in raw:
        kw["office_hours"] = _hours(raw["office_hours"], f"{w}.office_hours")
    if "agency_office_hours" in raw:
        kw["agency_office_hours"] = {
            agency: _hours(h, f"{w}.agency_office_hours.{agency}")
            for agency, h in (raw["agency_office_hours"] or {}).items()
        }
    if "working_weekdays" in raw:
        kw["working_weekdays"] = _weekdays(raw["working_weekdays"], f"{w}.working_weekdays")
    if "forwarding_cutoff" in raw:
        kw["forwarding_cutoff"] = _time(raw["forwarding_cutoff"], f"{w}.forwarding_cutoff")
    if "supplement_mode" in raw:
        if raw["supplement_mode"] not in SUPPLEMENT_MODES:
            raise RulesError(f"{w}.supplement_mode: one of {', '.join(SUPPLEMENT_MODES)}")
        kw["supplement_mode"] = raw["supplement_mode"]
    if "granularity" in raw:
        if raw["granularity"] not in GRANULARITIES:
            raise RulesError(f"{w}.granularity: one of {', '.join(GRANULARITIES)}")
        kw["granularity"] = raw["granularity"]
    if "idle_thresholds" in raw:
        try:
            kw["idle_thresholds"] = tuple(float(x) for x in raw["idle_thresholds"])
        except (TypeError, ValueError):
            raise RulesError(f"{w}.idle_thresholds: expected a list of numbers") from None
    if "duty_schedules" in raw:
        kw["duty_schedules"] = {
            agency: _weekdays(days, f"{w}.duty_schedules.{agency}")
            for agency, days in (raw["duty_schedules"] or {}).items()
        }
    if "uncertain" in raw:
        kw["uncertain"] = tuple(raw["uncertain"] or ())
        bad = set(kw["uncertain"]) - known
        if bad:
            raise RulesError(f"{w}.uncertain: unknown parameter(s) {', '.join(sorted(bad))}")
    if kw.get("holidays", "none") != "none":
        import holidays

        if kw["holidays"] not in holidays.list_supported_countries():
            raise RulesError(
                f"{w}.holidays: unknown country {kw['holidays']!r} (a code of the "
                "'holidays' package, e.g. VN, FR, or none)"
            )
    if "timezone" in kw:
        try:
            ZoneInfo(kw["timezone"])
        except (ValueError, ZoneInfoNotFoundError):
            raise RulesError(f"{w}.timezone: unknown time zone {kw['timezone']!r}") from None
    if kw["effective_to"] is not None and kw["effective_to"] < kw["effective_from"]:
        raise RulesError(f"{w}.effective_to: {kw['effective_to']} is before effective_from")
    return RuleSet(**kw)


def parse_overrides(raw: Mapping[str, Any] | None) -> CalendarOverrides:
    raw = raw or {}
    unknown = set(raw) - {"days_off", "workdays"}
    if unknown:
        raise RulesError(f"calendar overrides: unknown key(s) {', '.join(sorted(unknown))}")

    def days(key: str) -> frozenset[date]:
        out = set()
        for i, entry in enumerate(raw.get(key) or []):
            if not isinstance(entry, Mapping) or "date" not in entry:
                raise RulesError(f"calendar overrides: {key}[{i}]: expected {{date, name}}")
            out.add(_date(entry["date"], f"calendar overrides: {key}[{i}].date"))
        return frozenset(out)

    off, work = days("days_off"), days("workdays")
    both = off & work
    if both:
        raise RulesError(f"calendar overrides: {min(both)} is both a day off and a workday")
    return CalendarOverrides(days_off=off, workdays=work)


def _read_yaml(path: str | Path | None, packaged: str) -> Any:
    import yaml

    if path is None:
        text = (
            resources.files("ledger.domain.rulesets").joinpath(packaged).read_text(encoding="utf-8")
        )
        where = f"packaged {packaged}"
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{where}: {exc}") from None


def build_rules(
    raw_rules: Mapping[str, Any], raw_overrides: Mapping[str, Any] | None = None
) -> RuleBook:
    """A rule book from already-parsed mappings (tests and embedders use this)."""
    calendar = parse_overrides(raw_overrides)
    entries = (raw_rules or {}).get("rule_sets")
    if not isinstance(entries, list) or not entries:
        raise RulesError("rules: expected a non-empty list under 'rule_sets'")
    return RuleBook(tuple(parse_rule_set(e, calendar) for e in entries))


def load_rules(path: str | Path | None = None, overrides: str | Path | None = None) -> RuleBook:
    """The rule book from a rules file and a calendar-overrides file (packaged defaults if None).

    A rules file with ``extends: packaged`` adds its rule sets to the packaged
    ones (another period or jurisdiction); without it, it replaces them.
    """
    raw = _read_yaml(path, PACKAGED_RULES)
    if path is not None and isinstance(raw, Mapping) and "extends" in raw:
        if raw["extends"] != "packaged":
            raise RulesError(
                f"{path}: extends: only 'packaged' is supported, got {raw['extends']!r}"
            )
        own = raw.get("rule_sets")
        if not isinstance(own, list):
            raise RulesError(f"{path}: expected a list under 'rule_sets'")
        base = _read_yaml(None, PACKAGED_RULES)["rule_sets"]
        raw = {"rule_sets": [*base, *own]}
    return build_rules(raw, _read_yaml(overrides, PACKAGED_OVERRIDES))
