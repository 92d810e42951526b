"""The lifecycle fold: the impossible is refused with dossier, event and rule; the irregular is kept."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.lifecycle import (
    AWAITING_SUPPLEMENT,
    EMPTY,
    RESOLVED,
    RETURNED,
    WITHDRAWN,
    ImpossibleEvent,
    Lifecycle,
    check,
    evolve,
    fold,
)
from simulator.factories import START, dossier_life, envelope

DID = "D-1"


def ev(etype: str, hours: float = 0, **data: Any) -> dict[str, Any]:
    rng = random.Random(f"{etype}{hours}{sorted(data.items())}")
    return envelope(rng, DID, etype, START + timedelta(hours=hours), data)


RECEIVED = ev("DossierReceived", 0, rule_set="ND118-2025/v1")


def apply(*envs: dict[str, Any]) -> Lifecycle:
    state = EMPTY
    for env in envs:
        check(state, env)
        state = evolve(state, env)
    return state


def refused(state: Lifecycle, env: dict[str, Any], **kw: Any) -> ImpossibleEvent:
    with pytest.raises(ImpossibleEvent) as e:
        check(state, env, **kw)
    err = e.value
    assert err.dossier_id == DID and err.event_id == env["event_id"]
    assert DID in str(err) and env["event_id"] in str(err) and err.rule in str(err)
    return err


def test_unknown_dossier() -> None:
    assert refused(EMPTY, ev("HandedOver", 1)).rule == "unknown_dossier"


def test_duplicate_receipt() -> None:
    state = apply(RECEIVED)
    assert refused(state, ev("DossierReceived", 1)).rule == "duplicate_receipt"


@pytest.mark.parametrize("end", ["returned", "withdrawn"])
@pytest.mark.parametrize("etype", ["HandedOver", "ResultIssued", "ApologyIssued", "ClockPaused"])
def test_nothing_but_feedback_after_the_end(end: str, etype: str) -> None:
    if end == "returned":
        state = apply(
            RECEIVED,
            ev("ResultIssued", 1, decision="approved"),
            ev("ResultReturned", 2, channel="direct"),
        )
        assert state.status == RETURNED
    else:
        state = apply(RECEIVED, ev("DossierWithdrawn", 1))
        assert state.status == WITHDRAWN
    assert refused(state, ev(etype, 3)).rule == "after_end"
    check(state, ev("FeedbackGiven", 3, rating=1, complaint=True))


def test_result_returned_before_issued() -> None:
    state = apply(RECEIVED)
    assert refused(state, ev("ResultReturned", 1, channel="direct")).rule == (
        "return_without_result"
    )


def test_second_result() -> None:
    state = apply(RECEIVED, ev("ResultIssued", 1, decision="approved"))
    assert refused(state, ev("ResultIssued", 2, decision="refused")).rule == "second_result"


def test_supplement_answer_without_request_and_clock_pairs() -> None:
    state = apply(RECEIVED)
    assert refused(state, ev("SupplementReceived", 1, documents=[])).rule == (
        "supplement_without_request"
    )
    assert refused(state, ev("ClockResumed", 1, reason="r")).rule == "resume_without_pause"
    paused = apply(RECEIVED, ev("ClockPaused", 1, reason="r"))
    assert refused(paused, ev("ClockPaused", 2, reason="r")).rule == "pause_while_paused"


def test_occurred_at_before_the_previous_event_beyond_tolerance() -> None:
    state = apply(RECEIVED, ev("HandedOver", 48))
    check(state, ev("StepCompleted", 48 - 23))  # within the 24 h tolerance: kept
    err = refused(state, ev("StepCompleted", 48 - 25))
    assert err.rule == "occurred_before_previous"
    assert "1 day, 0:00:00" in err.detail
    check(state, ev("StepCompleted", 48 - 25), ordering_tolerance=timedelta(hours=30))
    refused(state, ev("StepCompleted", 47), ordering_tolerance=timedelta(0))


def test_tolerance_is_measured_against_the_latest_instant_so_far() -> None:
    """Drifting back by steps within tolerance cannot walk an event far into the past."""
    state = apply(RECEIVED, ev("HandedOver", 48), ev("StepCompleted", 30))
    assert refused(state, ev("StepCompleted", 20)).rule == "occurred_before_previous"


def test_offsets_are_compared_as_instants() -> None:
    state = apply(RECEIVED, ev("HandedOver", 10))
    late = ev("StepCompleted", 0)
    late["occurred_at"] = "2025-09-01T11:30:00+00:00"  # = 18:30 +07:00, after 18:00 +07:00
    check(state, late, ordering_tolerance=timedelta(0))


def test_irregular_conduct_is_recorded_never_refused() -> None:
    state = apply(
        RECEIVED,
        ev("SupplementRequested", 1, documents=["not-on-the-list"], reason="x"),
        ev("SupplementRequested", 2, documents=["another"], reason="again"),  # second request
        ev("SupplementReceived", 30, documents=["another"]),
        ev("ApologyIssued", 31),  # no reason, no new date
        ev("ApologyIssued", 32, reason="again"),  # second apology
        ev("ResultIssued", 400, decision="refused"),  # late, no reason
        ev("SupplementRequested", 401, documents=["x"], reason="after the result"),
        ev("ResultReturned", 402, channel="postal"),
    )
    assert state.status == RETURNED
    assert (state.supplement_requests, state.apologies, state.result) == (3, 2, "refused")


def test_states() -> None:
    s = apply(RECEIVED, ev("SupplementRequested", 1, documents=["x"], reason="r"))
    assert s.status == AWAITING_SUPPLEMENT and s.open_supplement_requests == 1
    s = apply(RECEIVED, ev("ResultIssued", 1, decision="approved"), ev("HandedOver", 2))
    assert s.status == RESOLVED and s.result == "approved"
    assert s.rule_set == "ND118-2025/v1" and s.events == 3
    assert s.received_at == datetime.fromisoformat(RECEIVED["occurred_at"])


def test_lifecycle_is_immutable() -> None:
    with pytest.raises(AttributeError):
        EMPTY.status = "X"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Lifecycle(colour="red")
    assert EMPTY.replace(events=1) != EMPTY and EMPTY.events == 0


def test_unknown_type_in_evolve_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        evolve(apply(RECEIVED), ev("DossierStolen", 1))


# --- properties ----------------------------------------------------------------

lives = st.builds(
    lambda seed, steps: dossier_life(DID, random.Random(seed), steps=steps),
    st.integers(0, 10**9),
    st.integers(0, 6),
)


@settings(max_examples=150, deadline=None)
@given(life=lives, data=st.data())
def test_full_replay_equals_incremental_fold(life: list[dict[str, Any]], data: Any) -> None:
    cut = data.draw(st.integers(0, len(life)))
    assert fold(life) == fold(life[cut:], fold(life[:cut]))
    state = EMPTY
    for env in life:
        check(state, env)
        state = evolve(state, env)
    assert state == fold(life)


@settings(max_examples=100, deadline=None)
@given(life=lives)
def test_folds_are_deterministic(life: list[dict[str, Any]]) -> None:
    first = fold(life)
    assert fold(life) == first and hash(fold(life)) == hash(first)
    assert fold([dict(e) for e in life]) == first
