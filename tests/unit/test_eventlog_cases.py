"""Mapping one case of a log to envelopes (pure): messy logs, and the reasons cases are refused."""

from __future__ import annotations

import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from interchange.cases import CaseRejected, SourceCase, SourceEvent, map_case
from interchange.mapping import MappingError, parse_mapping
from ledger.domain.rules import build_rules, load_rules

MAPPING = """
[source]
format = "xes"
timezone = "Europe/Paris"

[dossier]
id = { attr = "concept:name" }
received_at = { attr = "start" }
appointment_at = { attr = "due" }
resolved_at = { attr = "end" }
decision = { value = "approved" }
procedure_code = { value = "PERMIT-A" }
procedure_version = { value = "1" }
agency = { value = "city-permits" }
channel = { attr = "via", map = { Web = "online", Counter = "direct", Mail = "postal" }, default = "direct" }
processing_time = { value = 30, unit = "calendar_days" }
rule_set = { value = "CITY-2011/v1" }

[event]
at = { attr = "time:timestamp" }
actor = { attr = "org:resource", default = "unknown" }
step = { attr = "concept:name" }

[[event.types]]
activity = "Send supplement request"
type = "SupplementRequested"

[[event.types]]
activity = "Supplement received"
type = "SupplementReceived"
"""
RULES = build_rules(
    {
        "rule_sets": [
            {
                "id": "CITY-2011/v1",
                "effective_from": "2010-01-01",
                "effective_to": "2012-12-31",
                "timezone": "Europe/Paris",
                "holidays": "FR",
                "granularity": "minutes",
            }
        ]
    }
)


def mapping(text: str = MAPPING):
    return parse_mapping(tomllib.loads(text))


def case(attrs: dict, *events: dict) -> SourceCase:
    return SourceCase(attrs, [SourceEvent(e) for e in events], index=1)


def ev(name: str, at: str, who: str | None = "anna") -> dict:
    out = {"concept:name": name, "time:timestamp": at}
    if who:
        out["org:resource"] = who
    return out


START = {"concept:name": "C-1", "start": "2011-10-11T09:00:00+02:00", "via": "Web"}


def test_a_case_becomes_a_receipt_its_events_and_a_result() -> None:
    mapped = map_case(
        case(
            {**START, "end": "2011-10-20T16:00:00+02:00", "due": "2011-11-10T17:00:00"},
            ev("Check", "2011-10-12T10:00:00+02:00"),
            ev("Send supplement request", "2011-10-13T10:00:00+02:00"),
            ev("Supplement received", "2011-10-15T10:00:00+02:00"),
        ),
        mapping(),
        RULES,
    )
    types = [e["type"] for e in mapped.envelopes]
    assert types == [
        "DossierReceived",
        "StepCompleted",
        "SupplementRequested",
        "SupplementReceived",
        "ResultIssued",
    ]
    receipt = mapped.envelopes[0]
    assert receipt["dossier_id"] == "C-1" and receipt["occurred_at"] == "2011-10-11T09:00:00+02:00"
    assert receipt["data"]["channel"] == "online"
    assert receipt["data"]["processing_time"] == {"value": 30, "unit": "calendar_days"}
    assert receipt["data"]["appointment_at"] == "2011-11-10T17:00:00+01:00"  # naive: Paris, winter
    assert receipt["actor"] == {"id": "import", "role": "system", "agency": "city-permits"}
    assert mapped.envelopes[1]["data"] == {"step": "Check"}
    assert mapped.envelopes[1]["actor"]["id"] == "anna"
    assert mapped.envelopes[2]["data"] == {"documents": [], "reason": "Send supplement request"}
    assert mapped.envelopes[4]["data"] == {"decision": "approved"}
    assert mapped.envelopes[4]["occurred_at"] == "2011-10-20T16:00:00+02:00"


def test_ids_are_deterministic_and_depend_on_the_event_not_its_place() -> None:
    a = case(START, ev("Check", "2011-10-12T10:00:00+02:00"), ev("Sign", "2011-10-13T10:00:00"))
    b = case(START, ev("Sign", "2011-10-13T10:00:00"), ev("Check", "2011-10-12T10:00:00+02:00"))
    ids_a = [e["event_id"] for e in map_case(a, mapping(), RULES).envelopes]
    ids_b = [e["event_id"] for e in map_case(b, mapping(), RULES).envelopes]
    assert ids_a == ids_b and len(set(ids_a)) == 3


def test_messy_events_are_ordered_deduplicated_defaulted_and_localised() -> None:
    mapped = map_case(
        case(
            START,
            ev("Sign", "2011-10-14 09:30:00", who=None),  # no offset, no resource
            ev("Check", "2011-10-12T10:00:00Z"),
            ev("Check", "2011-10-12T10:00:00Z"),  # a duplicate row
        ),
        mapping(),
        RULES,
    )
    envs = mapped.envelopes
    assert mapped.duplicate_rows == 1
    assert [e["data"].get("step") for e in envs[1:]] == ["Check", "Sign"]
    assert envs[1]["occurred_at"] == "2011-10-12T10:00:00+00:00"
    assert envs[2]["occurred_at"] == "2011-10-14T09:30:00+02:00"
    assert envs[2]["actor"]["id"] == "unknown"
    assert envs[2]["recorded_at"] == envs[2]["occurred_at"]  # no back-dating evidence invented


def test_the_receipt_stays_first_even_when_an_event_is_logged_just_before_it() -> None:
    mapped = map_case(case(START, ev("Scan", "2011-10-11T08:00:00+02:00")), mapping(), RULES)
    assert [e["type"] for e in mapped.envelopes] == ["DossierReceived", "StepCompleted"]


@pytest.mark.parametrize(
    ("attrs", "events", "fragment"),
    [
        (
            {**START, "end": "2011-10-01T10:00:00+02:00"},
            [],
            "the case ends (resolved_at 2011-10-01T10:00:00+02:00) before it starts",
        ),
        (
            {**START, "via": "Fax"},
            [],
            None,  # not in map, but a default is given: mapped to direct
        ),
        (START, [ev("Check", "yesterday")], "[event].at: not a timestamp: 'yesterday'"),
        (
            START,
            [ev("Check", "2011-10-01T10:00:00+02:00")],
            "occurred_before_previous",
        ),
        (
            START,
            [ev("Supplement received", "2011-10-12T10:00:00+02:00")],
            "supplement_without_request",
        ),
        ({"start": "2011-10-11T09:00:00+02:00"}, [], "[dossier].id: no concept:name"),
    ],
)
def test_cases_that_cannot_be_mapped_are_refused_with_the_reason(
    attrs: dict, events: list, fragment: str | None
) -> None:
    if fragment is None:
        assert map_case(case(attrs, *events), mapping(), RULES).envelopes[0]["data"]["channel"] == (
            "direct"
        )
        return
    with pytest.raises(CaseRejected) as info:
        map_case(case(attrs, *events), mapping(), RULES)
    assert fragment in info.value.reason


def test_a_case_no_rule_set_covers_is_refused_with_the_ledger_message() -> None:
    text = MAPPING.replace('rule_set = { value = "CITY-2011/v1" }\n', "")
    with pytest.raises(CaseRejected) as info:
        map_case(case(START), mapping(text), load_rules())
    assert info.value.reason == (
        "dossier C-1: no rule set in force on 2011-10-11; give data.rule_set or a rules file "
        "(DOSSIER_RULES) that covers it"
    )


def test_a_mapped_value_not_in_map_without_default_names_the_field() -> None:
    text = MAPPING.replace(', default = "direct"', "")
    with pytest.raises(CaseRejected, match=r"\[dossier\].channel: via 'Fax' is not in map"):
        map_case(case({**START, "via": "Fax"}), mapping(text), RULES)


def test_timestamps_with_a_format_and_dst() -> None:
    text = MAPPING.replace(
        'timezone = "Europe/Paris"', 'timezone = "Europe/Paris"\ntime_format = "%d/%m/%Y %H:%M"'
    )
    mapped = map_case(
        case({**START, "start": "11/10/2011 09:00"}, ev("Check", "30/10/2011 12:00")),
        mapping(text),
        RULES,
    )
    assert mapped.envelopes[0]["occurred_at"] == "2011-10-11T09:00:00+02:00"
    assert mapped.envelopes[1]["occurred_at"] == "2011-10-30T12:00:00+01:00"  # after DST ended
    at = datetime.fromisoformat(mapped.envelopes[1]["occurred_at"])
    assert at.utcoffset() == datetime(2011, 10, 30, 12, tzinfo=ZoneInfo("Europe/Paris")).utcoffset()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (('format = "xes"', 'format = "json"'), "[source].format"),
        (('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"'), "unknown time zone"),
        (
            ("procedure_code = { value", "procedure_codes = { value"),
            "unknown field(s) procedure_codes",
        ),
        (('type = "SupplementRequested"', 'type = "Supplemented"'), "[[event.types]][0].type"),
        (('at = { attr = "time:timestamp" }', 'at = { atr = "time:timestamp" }'), "[event].at"),
        (('unit = "calendar_days"', 'unit = "fortnights"'), "processing_time.unit"),
    ],
)
def test_a_wrong_mapping_file_is_refused_by_key(change: tuple[str, str], fragment: str) -> None:
    with pytest.raises(MappingError) as info:
        mapping(MAPPING.replace(*change))
    assert fragment in str(info.value)


def test_the_documented_round_trip_mapping_is_the_one_the_code_gives() -> None:
    from pathlib import Path

    from interchange.export import ledger_mapping

    doc = (Path(__file__).parents[2] / "docs" / "import.md").read_text(encoding="utf-8")
    assert f"```toml\n{ledger_mapping('xes')}```" in doc
    for fmt in ("xes", "csv"):
        parse_mapping(tomllib.loads(ledger_mapping(fmt)))  # both parse
