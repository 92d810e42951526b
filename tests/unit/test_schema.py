"""The published JSON Schema: committed files are the generated ones, and they agree with validate()."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import envelope_schema
from ledger.domain.events import EVENT_TYPES, EnvelopeError, validate
from simulator.factories import event_stream

ENVELOPE = envelope_schema.envelope_schema()
VALIDATOR = jsonschema.Draft202012Validator(ENVELOPE)


def schema_ok(env: Any) -> bool:
    return VALIDATOR.is_valid(env)


def validate_ok(env: Any) -> bool:
    try:
        validate(copy.deepcopy(env))
    except EnvelopeError:
        return False
    return True


def base(etype: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": "0b9f8a52-3c1e-4d7a-9a51-2f3b4c5d6e7f",
        "dossier_id": "000.00.12.H41-250901-0001",
        "type": etype,
        "occurred_at": "2025-09-01T08:15:00+07:00",
        "recorded_at": "2025-09-01T08:15:30.250+07:00",
        "actor": {"id": "cb-001", "role": "handler", "agency": "ubnd-xa-an-binh"},
        "data": data,
        "schema_version": 2,
    }


FULL_DATA: dict[str, dict[str, Any]] = {
    "DossierReceived": {
        "procedure_code": "2.000635",
        "procedure_version": "2024-01",
        "agency": "ubnd-xa-an-binh",
        "channel": "postal",
        "online_level": "partial",
        "applicant": {
            "name": "Trần Thị B",
            "id_number": "001200012345",
            "phone": "0901234567",
            "address": "Thôn 3",
        },
        "documents": ["don-de-nghi", "cccd"],
        "processing_time": {"value": 5, "unit": "working_days"},
        "appointment_at": "2025-09-08T17:00:00+07:00",
        "rule_set": "ND118-2025/v1",
        "lead_agency": "so-tu-phap",
        "fee": 50000,
    },
    "HandedOver": {
        "from_official": "tn-01",
        "from_agency": "a",
        "to_official": "cv-02",
        "to_agency": "b",
        "step": "appraisal",
        "budget": {"value": 1.5, "unit": "working_hours"},
        "acknowledged": True,
        "note": "ok",
    },
    "StepCompleted": {"step": "appraisal", "outcome": "ok", "note": "n"},
    "SupplementRequested": {"documents": ["x"], "reason": "missing", "stage": "intake"},
    "SupplementReceived": {"documents": ["x"]},
    "ClockPaused": {"reason": "site visit"},
    "ClockResumed": {"reason": "done"},
    "TransferredToAgency": {
        "to_agency": "so-tn-mt",
        "task": "consult",
        "budget": {"unit": "same_day"},
        "lead_agency": "ubnd",
    },
    "ApologyIssued": {"reason": "late", "new_appointment_at": "2025-09-10T17:00:00Z"},
    "ResultIssued": {"decision": "refused", "reason": "incomplete"},
    "ResultReturned": {"channel": "online"},
    "DossierWithdrawn": {"reason": "changed mind"},
    "FeedbackGiven": {"rating": 4, "complaint": False, "comment": "fine"},
}

BAD_VALUES: list[Any] = [
    None,
    "",
    "x",
    0,
    -1,
    1.5,
    2**60,
    True,
    [],
    ["a", ""],
    [1],
    {},
    {"value": 3},
    {"value": -1, "unit": "working_days"},
    {"value": 3, "unit": "weeks"},
    {"value": 3, "unit": "working_days", "extra": 1},
    "2025-09-01T08:00:00",
    "2025-09-01 08:00:00+07:00",
    "2025-09-01T08:00:00+07:00\n",
    "2025-09-01T08:00:00+0700",
    "2025-13-01T08:00:00+07:00",
    "0b9f8a52-3c1e-4d7a-9a51-2f3b4c5d6e7f\n",
    {"name": "A"},
    {"name": "A", "id_number": "1", "email": "a@b"},
    {"pseudonym": "ap-0123456789abcdef01234567", "sealed": "AAAA", "name": "A"},
    {"pseudonym": "bob", "sealed": "AAAA"},
    {"id": "x", "role": "handler", "agency": "a", "extra": 1},
    {"id": "x", "role": "king", "agency": "a"},
]


def corpus() -> list[dict[str, Any]]:
    """Good envelopes of every type, and each mutated field by field."""
    out: list[dict[str, Any]] = []
    goods = [base(t, d) for t, d in FULL_DATA.items()] + event_stream(15, seed=7)
    minimal = [
        base(t, {k: FULL_DATA[t][k] for k, (_, req) in spec.items() if req})
        for t, spec in EVENT_TYPES.items()
    ]
    goods += minimal
    out += goods
    for env in [base(t, d) for t, d in FULL_DATA.items()]:
        for key in list(env):
            removed = dict(env)
            del removed[key]
            out.append(removed)
            for bad in BAD_VALUES:
                out.append({**env, key: bad})
        for key in list(env["data"]):
            removed = copy.deepcopy(env)
            del removed["data"][key]
            out.append(removed)
            for bad in BAD_VALUES:
                out.append({**env, "data": {**env["data"], key: bad}})
        out.append({**env, "data": {**env["data"], "unknown": 1}})
        out.append({**env, "hash": "0" * 64})
        out.append({**env, "schema_version": 3})
        out.append({**env, "type": "DossierStolen"})
        out.append({**env, "recorded_at": None})
        out.append({**env, "event_id": env["event_id"].upper()})
        out.append({**env, "occurred_at": "2025-09-01T08:15:00.123456789Z"})
    out += [[], "x", None, 5]  # not objects at all
    return out


def test_committed_schema_files_equal_the_generated_ones() -> None:
    assert envelope_schema.differences() == [], "run: python -m ledger.envelope_schema"


def test_generated_schemas_are_valid_draft_2020_12() -> None:
    for schema in envelope_schema.generate().values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_check_mode_reports_a_stale_file(tmp_path) -> None:
    assert envelope_schema.main(["--dir", str(tmp_path)]) == 0
    assert envelope_schema.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "envelope.v2.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "Old.data.v2.json").write_text("{}\n", encoding="utf-8")
    assert envelope_schema.main(["--check", "--dir", str(tmp_path)]) == 1
    assert sorted(envelope_schema.differences(tmp_path)) == [
        "Old.data.v2.json: not generated from EVENT_TYPES (remove it)",
        "envelope.v2.json: differs from the generated schema",
    ]


def test_every_event_type_has_a_data_schema() -> None:
    files = envelope_schema.generate()
    assert set(ENVELOPE["$defs"]) == set(EVENT_TYPES)
    for etype in EVENT_TYPES:
        assert f"{etype}.data.v2.json" in files


def test_corpus_is_mixed() -> None:
    results = [validate_ok(e) for e in corpus()]
    assert sum(results) > 40 and results.count(False) > 1000


def test_schema_and_validate_agree_on_the_corpus() -> None:
    disagreements = [
        (env, validate_ok(env))
        for env in corpus()
        if not (isinstance(env, dict) and env.get("schema_version") == 1)
        and schema_ok(env) != validate_ok(env)
    ]
    assert disagreements == []


def test_the_one_documented_gap_is_calendar_validity() -> None:
    env = base("ClockPaused", {"reason": "r"}) | {"occurred_at": "2025-02-30T08:00:00+07:00"}
    assert schema_ok(env) and not validate_ok(env)


def test_stored_envelopes_match_the_stored_schema() -> None:
    stored = jsonschema.Draft202012Validator(envelope_schema.envelope_schema(stored=True))
    env = base("DossierReceived", copy.deepcopy(FULL_DATA["DossierReceived"]))
    env["data"]["applicant"] = {"pseudonym": "ap-" + "ab" * 12, "sealed": "QUJD"}
    env |= {"appended_at": env["recorded_at"], "prev_hash": "0" * 64, "hash": "a" * 64}
    assert stored.is_valid(env)
    env["data"]["applicant"] = FULL_DATA["DossierReceived"]["applicant"]  # never in clear
    assert not stored.is_valid(env)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(
    etype=st.sampled_from(sorted(FULL_DATA)),
    where=st.sampled_from(["envelope", "data", "actor"]),
    seed=st.integers(0, 10**6),
    value=json_values,
)
def test_schema_and_validate_agree_on_random_edits(
    etype: str, where: str, seed: int, value: Any
) -> None:
    env = copy.deepcopy(base(etype, FULL_DATA[etype]))
    target = {"envelope": env, "data": env["data"], "actor": env["actor"]}[where]
    rng = random.Random(seed)
    keys = sorted(target) + ["new_field"]
    target[rng.choice(keys)] = value
    if env.get("schema_version") == 1:
        return
    assert schema_ok(env) == validate_ok(env), json.dumps(env, ensure_ascii=False, default=str)


@pytest.mark.parametrize("etype", sorted(EVENT_TYPES))
def test_full_and_minimal_examples_are_valid(etype: str) -> None:
    assert schema_ok(base(etype, FULL_DATA[etype]))
    assert validate_ok(base(etype, FULL_DATA[etype]))


def test_docs_describe_every_type_and_field() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    for etype, spec in EVENT_TYPES.items():
        assert f"`{etype}`" in docs
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{etype}` |"))
        for name in spec:
            assert f"`{name}`" in row, f"{etype}.{name} missing from docs/events.md"
