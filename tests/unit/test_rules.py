"""Rules as dated configuration: the packaged rule book, in_force, malformed files, pinning."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from ledger.application import SQLITE_RECORDER, DossierLedger
from ledger.domain.durations import Duration
from ledger.domain.lifecycle import fold
from ledger.domain.rules import RuleBook, RulesError, build_rules, load_rules

ND61, ND118 = "ND61-2018/v1", "ND118-2025/v1"
BOOK = load_rules()


def packaged() -> dict[str, Any]:
    text = resources.files("ledger.domain.rulesets").joinpath("rulesets.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def with_change(index: int, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(packaged())
    raw["rule_sets"][index].update(changes)
    return raw


def test_packaged_rule_book_loads() -> None:
    assert isinstance(BOOK, RuleBook)
    assert [r.id for r in BOOK.rule_sets] == [ND61, ND118]
    nd118 = BOOK.get(ND118)
    assert BOOK.latest is nd118 and nd118.effective_to is None
    assert nd118.forwarding_cutoff == time(15, 0)
    assert nd118.apology_lead == Duration(1, "working_days")
    assert nd118.ordering_tolerance == timedelta(hours=24)
    assert nd118.hours_for("anything") == ((time(7, 30), time(11, 30)), (time(13, 30), time(17)))
    assert date(2025, 5, 2) in nd118.calendar.days_off
    assert date(2025, 4, 26) in nd118.calendar.workdays
    assert "office_hours" in nd118.uncertain
    with pytest.raises(KeyError):
        BOOK.get("ND00/none")


def test_in_force_by_local_date() -> None:
    assert BOOK.in_force(date(2025, 6, 30)).id == ND61
    assert BOOK.in_force(date(2025, 7, 1)).id == ND118
    assert BOOK.in_force(datetime(2025, 6, 30, 16, 59, tzinfo=UTC)).id == ND61  # 23:59 local
    assert BOOK.in_force(datetime(2025, 6, 30, 17, 0, tzinfo=UTC)).id == ND118  # 00:00 local
    assert BOOK.in_force(datetime(2025, 6, 30, 20, 0, tzinfo=UTC)).id == ND118  # 1 July in Hanoi
    assert BOOK.in_force(date(2018, 6, 21)).id == ND61


def test_in_force_refuses_uncovered_dates_and_naive_instants() -> None:
    with pytest.raises(RulesError, match="2018-06-20"):
        BOOK.in_force(date(2018, 6, 20))
    with pytest.raises(ValueError, match="naive"):
        BOOK.in_force(datetime(2025, 7, 1, 9))


@pytest.mark.parametrize(
    ("index", "changes", "fragments"),
    [
        (1, {"forwarding_cutoff": "25:00"}, [ND118, "forwarding_cutoff", "25:00"]),
        (
            0,
            {"office_hours": [["07:30", "11h30"], ["13:30", "17:00"]]},
            [ND61, "office_hours", "11h30"],
        ),
        (0, {"office_hours": [["13:30", "17:00"], ["07:30", "11:30"]]}, [ND61, "office_hours"]),
        (1, {"cutoff_hour": "15:00"}, [ND118, "unknown parameter", "cutoff_hour"]),
        (1, {"working_weekdays": [0, 1, 2, 3, 7]}, [ND118, "working_weekdays"]),
        (1, {"duty_schedules": {"Health": ["Mon"]}}, [ND118, "duty_schedules.Health"]),
        (1, {"apology_lead": "1 week"}, [ND118, "apology_lead"]),
        (1, {"granularity": "hours"}, [ND118, "granularity"]),
        (1, {"supplement_mode": "reset"}, [ND118, "supplement_mode"]),
        (1, {"timezone": "Asia/Hanoi_Nowhere"}, [ND118, "timezone"]),
        (1, {"reschedule_limit": "one"}, [ND118, "reschedule_limit"]),
        (1, {"uncertain": ["office_hourz"]}, [ND118, "uncertain", "office_hourz"]),
        (1, {"idle_thresholds": ["half"]}, [ND118, "idle_thresholds"]),
        (1, {"effective_from": "2025-13-01"}, [ND118, "effective_from"]),
        (0, {"effective_to": "2018-01-01"}, [ND61, "effective_to"]),
    ],
)
def test_malformed_rule_sets_name_rule_set_and_field(
    index: int, changes: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(RulesError) as err:
        build_rules(with_change(index, **changes))
    for fragment in fragments:
        assert fragment in str(err.value)


def test_unquoted_yaml_time_gets_a_hint() -> None:
    raw = yaml.safe_load(
        "rule_sets:\n  - {id: T/v1, effective_from: 2025-01-01, forwarding_cutoff: 15:00}\n"
    )
    with pytest.raises(RulesError, match=r"T/v1\.forwarding_cutoff: .*900.*quote"):
        build_rules(raw)


def test_overlapping_rule_sets_are_refused() -> None:
    with pytest.raises(RulesError, match=f"{ND61} and {ND118} overlap"):
        build_rules(with_change(0, effective_to="2025-07-01"))
    with pytest.raises(RulesError, match="overlap"):
        build_rules(with_change(0, effective_to=None))


def test_malformed_overrides_name_the_entry() -> None:
    rules = packaged()
    with pytest.raises(RulesError, match=r"days_off\[0\]\.date"):
        build_rules(rules, {"days_off": [{"date": "2025-02-30", "name": "x"}]})
    with pytest.raises(RulesError, match="2025-05-02 is both"):
        build_rules(
            rules, {"days_off": [{"date": "2025-05-02"}], "workdays": [{"date": "2025-05-02"}]}
        )
    with pytest.raises(RulesError, match="holidays"):
        build_rules(rules, {"holidays": []})
    with pytest.raises(RulesError, match="rule_sets"):
        build_rules({"rulesets": []})
    with pytest.raises(RulesError, match="without an id"):
        build_rules({"rule_sets": [{"effective_from": "2025-01-01"}]})


def test_unreadable_yaml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rule_sets: [\n", encoding="utf-8")
    with pytest.raises(RulesError, match="rules.yaml"):
        load_rules(bad)


# --- pinning at receipt ------------------------------------------------------------


def _ledger() -> DossierLedger:
    """A ledger on in-memory SQLite (no files, no network)."""
    from ledger.sqlite_store import SQLiteKeyStore

    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER,
        "SQLITE_DBNAME": ":memory:",
    }
    return DossierLedger(env, rules=BOOK, keys=SQLiteKeyStore(":memory:"))


def _event(dossier_id: str, etype: str, occurred_at: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "dossier_id": dossier_id,
        "type": etype,
        "occurred_at": occurred_at,
        "actor": {"id": "off-1", "role": "receiver", "agency": "H41"},
        "schema_version": 2,
        "data": data,
    }


def _received(dossier_id: str, occurred_at: str) -> dict[str, Any]:
    return _event(
        dossier_id,
        "DossierReceived",
        occurred_at,
        {
            "procedure_code": "2.000635",
            "procedure_version": "1",
            "agency": "H41",
            "channel": "direct",
            "applicant": {"name": "A", "id_number": "001", "phone": "1", "address": "x"},
            "documents": ["D1"],
            "processing_time": {"value": 3, "unit": "working_days"},
        },
    )


def test_dossier_keeps_the_rule_set_pinned_at_receipt() -> None:
    ledger = _ledger()
    late_june = "000.00.12.H41-250630-0001"
    july = "000.00.12.H41-250701-0001"
    # 23:00 on 30 June in Hanoi: still ND61; 20:00Z on 30 June is 03:00 on 1 July: ND118
    assert (
        ledger.append(_received(late_june, "2025-06-30T16:00:00+00:00")).envelope["data"][
            "rule_set"
        ]
        == ND61
    )
    assert (
        ledger.append(_received(july, "2025-06-30T20:00:00+00:00")).envelope["data"]["rule_set"]
        == ND118
    )
    handover = {
        "from_official": "off-1",
        "from_agency": "H41",
        "to_official": "off-2",
        "to_agency": "H41",
        "step": "appraisal",
    }
    ledger.append(_event(late_june, "HandedOver", "2025-07-02T09:00:00+07:00", handover))
    state = fold([r.envelope for r in ledger.events_of(late_june)])
    assert state.rule_set == ND61
    assert BOOK.in_force(datetime(2025, 7, 2, 2, tzinfo=UTC)).id == ND118


def test_unknown_pinned_rule_set_is_refused() -> None:
    from ledger.domain.events import EnvelopeError

    env = _received("000.00.12.H41-250702-0001", "2025-07-02T09:00:00+07:00")
    env["data"]["rule_set"] = "ND999/v1"
    with pytest.raises(EnvelopeError, match="rule_set"):
        _ledger().append(env)
