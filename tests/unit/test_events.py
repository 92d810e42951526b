"""The envelope: validation names the offending field; older versions are upcast."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ledger.domain.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    EnvelopeError,
    Recorded,
    parse_instant,
    upcast,
    validate,
)


def received(**data: Any) -> dict[str, Any]:
    body = {
        "procedure_code": "2.000635",
        "procedure_version": "2024-01",
        "agency": "ubnd-xa-an-binh",
        "channel": "direct",
        "applicant": {"name": "Lê Văn C", "id_number": "079123456789"},
        "documents": ["don"],
        "processing_time": {"value": 3, "unit": "working_days"},
    }
    body.update(data)
    return {
        "event_id": "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
        "dossier_id": "D-1",
        "type": "DossierReceived",
        "occurred_at": "2025-09-01T08:00:00+07:00",
        "actor": {"id": "tn-01", "role": "receiver", "agency": "ubnd-xa-an-binh"},
        "data": body,
        "schema_version": 2,
    }


def error_of(env: Any) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as e:
        validate(env)
    return e.value


def test_a_valid_envelope_comes_back_unchanged() -> None:
    env = received()
    assert validate(copy.deepcopy(env)) == env


def test_validate_does_not_mutate_its_input() -> None:
    env = received()
    env["type"] = "FeedbackGiven"
    env["data"] = {"rating": 5.0}
    before = copy.deepcopy(env)
    out = validate(env)
    assert env == before
    assert out["data"]["rating"] == 5 and type(out["data"]["rating"]) is int


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (lambda e: e.pop("dossier_id"), "dossier_id", "missing"),
        (lambda e: e.pop("actor"), "actor", "missing"),
        (lambda e: e.update(event_id="42"), "event_id", "UUID"),
        (lambda e: e.update(type="DossierStolen"), "type", "unknown event type 'DossierStolen'"),
        (lambda e: e.update(occurred_at="2025-09-01T08:00:00"), "occurred_at", "UTC offset"),
        (lambda e: e.update(occurred_at="2025-02-30T08:00:00Z"), "occurred_at", "day is out"),
        (lambda e: e.update(recorded_at="yesterday"), "recorded_at", "UTC offset"),
        (lambda e: e.update(hash="0" * 64), "hash", "set by the ledger"),
        (lambda e: e.update(prev_hash="0" * 64), "prev_hash", "set by the ledger"),
        (lambda e: e.update(extra=1), "envelope", "unknown field(s): extra"),
        (lambda e: e["actor"].update(role="king"), "actor.role", "must be one of"),
        (lambda e: e["actor"].update(mood="ok"), "actor", "unknown field(s): mood"),
        (lambda e: e["data"].pop("agency"), "data.agency", "missing (required for"),
        (lambda e: e["data"].update(channel="fax"), "data.channel", "must be one of"),
        (lambda e: e["data"].update(fee=-5), "data.fee", "between 0"),
        (lambda e: e["data"].update(fee=2**60), "data.fee", "between 0"),
        (lambda e: e["data"].update(documents="don"), "data.documents", "list"),
        (lambda e: e["data"].update(colour="red"), "data", "unknown field(s) for DossierReceived"),
        (lambda e: e["data"]["applicant"].pop("id_number"), "data.applicant.id_number", "missing"),
        (lambda e: e["data"]["applicant"].update(phone=5), "data.applicant.phone", "string"),
        (
            lambda e: e["data"]["applicant"].update(sealed="QUJD", pseudonym="ap-" + "0" * 24),
            "data.applicant",
            "only pseudonym and sealed",
        ),
        (
            lambda e: e["data"].update(processing_time={"value": 3, "unit": "weeks"}),
            "data.processing_time.unit",
            "must be one of",
        ),
        (
            lambda e: e["data"].update(processing_time={"unit": "working_days"}),
            "data.processing_time.value",
            "number",
        ),
        (
            lambda e: e["data"].update(processing_time={"value": 1, "unit": "months", "x": 1}),
            "data.processing_time",
            "unknown field(s): x",
        ),
        (lambda e: e.update(schema_version=3), "schema_version", "unsupported version 3"),
        (lambda e: e.update(schema_version="2"), "schema_version", "integer"),
    ],
)
def test_errors_name_the_field(edit: Any, field: str, fragment: str) -> None:
    env = received()
    edit(env)
    err = error_of(env)
    assert err.field == field
    assert fragment in str(err)
    assert str(err).startswith(f"{field}: ")


def test_not_an_object_is_refused() -> None:
    assert error_of([1, 2]).field == "envelope"


def test_same_day_needs_no_value() -> None:
    validate(received(processing_time={"unit": "same_day"}))
    assert error_of(received(processing_time={"unit": "same_day", "value": "x"})).field == (
        "data.processing_time.value"
    )


def test_irregular_but_real_payloads_are_valid() -> None:
    """An apology with no reason, unlisted documents: evidence, never refused here."""
    env = received()
    env.update(type="ApologyIssued", data={})
    validate(env)
    env.update(type="SupplementRequested", data={"documents": ["so-ho-khau"], "reason": "?"})
    validate(env)


def test_optional_null_is_absent_but_required_null_is_missing() -> None:
    validate(received(fee=None, appointment_at=None))
    assert "missing" in str(error_of(received(agency=None)))


def test_instants_accept_z_fractions_and_no_seconds() -> None:
    assert parse_instant("2025-09-01T08:00Z", "x") == datetime(2025, 9, 1, 8, tzinfo=UTC)
    at = parse_instant("2025-09-01T08:00:00.123456789+07:00", "x")
    assert at.utcoffset() == timedelta(hours=7) and at.microsecond == 123456
    for bad in ("2025-09-01", "20250901T080000+07:00", "2025-09-01 08:00:00+07:00", 1):
        with pytest.raises(EnvelopeError):
            parse_instant(bad, "x")


# --- upcasting -----------------------------------------------------------------


def v1_received() -> dict[str, Any]:
    env = received()
    env["schema_version"] = 1
    data = env["data"]
    data["channel"] = 2
    data["processing_days"] = data.pop("processing_time")["value"]
    return env


def test_v1_is_upcast_to_v2() -> None:
    out = validate(v1_received())
    assert out["schema_version"] == SCHEMA_VERSION == 2
    assert out["data"]["channel"] == "online"
    assert out["data"]["processing_time"] == {"value": 3, "unit": "working_days"}
    assert "processing_days" not in out["data"]


def test_v1_result_returned_channel_codes() -> None:
    env = received()
    env.update(type="ResultReturned", schema_version=1, data={"channel": "3"})
    assert validate(env)["data"]["channel"] == "postal"


def test_v1_boolean_channel_is_not_mistaken_for_code_1() -> None:
    env = received()
    env.update(type="ResultReturned", schema_version=1, data={"channel": True})
    assert error_of(env).field == "data.channel"


def test_v1_with_malformed_data_gets_an_envelope_error_not_a_crash() -> None:
    env = v1_received()
    env["data"] = "garbage"
    assert error_of(env).field == "data"


def test_upcast_leaves_current_versions_alone_and_refuses_unknown_ones() -> None:
    env = received()
    assert upcast(env) is env
    for version in (0, 3, None, True):
        with pytest.raises(EnvelopeError) as e:
            upcast({**env, "schema_version": version})
        assert e.value.field == "schema_version"


def test_upcast_keeps_ledger_fields_of_a_stored_v1_event() -> None:
    env = v1_received() | {"prev_hash": "0" * 64, "hash": "a" * 64, "appended_at": "x"}
    out = upcast(env)
    assert (out["hash"], out["prev_hash"], out["schema_version"]) == ("a" * 64, "0" * 64, 2)


def test_every_type_is_declared_with_kinds_the_validator_knows() -> None:
    for etype, spec in EVENT_TYPES.items():
        env = received()
        env.update(type=etype, data={})
        try:
            validate(env)
        except EnvelopeError as e:
            assert e.field.startswith("data.") and "missing" in str(e)
            assert spec[e.field[5:]][1] is True


def test_recorded_exposes_type_and_dossier() -> None:
    rec = Recorded(7, 1, received())
    assert (rec.type, rec.dossier_id, rec.position) == ("DossierReceived", "D-1", 7)


def test_offsets_other_than_utc_are_kept() -> None:
    env = received()
    env["occurred_at"] = "2025-09-01T08:00:00-05:00"
    out = validate(env)
    assert parse_instant(out["occurred_at"], "x").tzinfo == timezone(timedelta(hours=-5))


@pytest.mark.parametrize("version", [2.0, True, "2", None, 3, 0])
def test_schema_version_must_be_a_supported_integer(version: Any) -> None:
    env = received()
    env["schema_version"] = version
    assert error_of(env).field == "schema_version"
