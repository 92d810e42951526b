"""The dossier lifecycle as a pure fold: what is impossible, and what state results.

Two kinds of wrong are kept apart (domain brief §3):

* *impossible* sequences raise :class:`ImpossibleEvent`, naming the dossier,
  the event and the rule: the ledger refuses them;
* *irregular but real* conduct (a second supplement request, a late result with
  no apology, unlisted documents, back-dating within tolerance) is folded like
  any other event. The ledger is evidence; the stream processors flag it.

Pure: standard library only. ``check`` and ``evolve`` are deterministic.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

# Portal status codes (domain brief §3).
RECEIVED = "RECEIVED"
IN_PROGRESS = "IN_PROGRESS"
AWAITING_SUPPLEMENT = "AWAITING_SUPPLEMENT"
RESOLVED = "RESOLVED"
RETURNED = "RETURNED"
WITHDRAWN = "WITHDRAWN"
TERMINAL = frozenset({RETURNED, WITHDRAWN})

# Types that may follow the end of a dossier (ratings, complaints: §3).
AFTER_END = frozenset({"FeedbackGiven"})

DEFAULT_ORDERING_TOLERANCE = timedelta(hours=24)


class ImpossibleEvent(ValueError):
    """The event cannot have happened; it is refused and nothing is stored."""

    def __init__(self, dossier_id: str, event_id: str, rule: str, detail: str) -> None:
        super().__init__(f"dossier {dossier_id}: event {event_id}: {rule}: {detail}")
        self.dossier_id = dossier_id
        self.event_id = event_id
        self.rule = rule
        self.detail = detail


class Lifecycle:
    """What the ledger must know of a dossier to judge the next event.

    Immutable by convention: ``replace`` returns a new value (a dict-backed
    copy, several times cheaper than dataclass or namedtuple replacement, which
    matters when the ledger folds every event of a bulk ingest).
    """

    __slots__ = ("__dict__",)

    dossier_id: str
    status: str | None  # None: no DossierReceived yet
    rule_set: str | None
    received_at: datetime | None
    last_occurred_at: datetime | None
    result: str | None  # approved | refused
    open_supplement_requests: int
    supplement_requests: int
    paused: bool
    apologies: int
    last_hash: str | None
    events: int

    _DEFAULTS: dict[str, Any] = {
        "dossier_id": "",
        "status": None,
        "rule_set": None,
        "received_at": None,
        "last_occurred_at": None,
        "result": None,
        "open_supplement_requests": 0,
        "supplement_requests": 0,
        "paused": False,
        "apologies": 0,
        "last_hash": None,
        "events": 0,
    }

    def __init__(self, **fields: Any) -> None:
        unknown = set(fields) - set(self._DEFAULTS)
        if unknown:
            raise TypeError(f"unknown Lifecycle field(s): {sorted(unknown)}")
        self.__dict__.update(self._DEFAULTS)
        self.__dict__.update(fields)

    def replace(self, **changes: Any) -> Lifecycle:
        new = object.__new__(Lifecycle)
        d = new.__dict__
        d.update(self.__dict__)
        d.update(changes)
        return new

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Lifecycle is immutable; use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lifecycle) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.items()))

    def __repr__(self) -> str:
        return f"Lifecycle({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    @property
    def exists(self) -> bool:
        return self.status is not None

    @property
    def closed(self) -> bool:
        return self.status in TERMINAL


EMPTY = Lifecycle()


def check(
    state: Lifecycle,
    envelope: dict[str, Any],
    *,
    ordering_tolerance: timedelta = DEFAULT_ORDERING_TOLERANCE,
) -> None:
    """Raise :class:`ImpossibleEvent` if ``envelope`` cannot follow ``state``."""
    etype = envelope["type"]
    dossier_id = envelope["dossier_id"]
    event_id = envelope["event_id"]

    def refuse(rule: str, detail: str) -> None:
        raise ImpossibleEvent(dossier_id, event_id, rule, detail)

    if etype == "DossierReceived":
        if state.exists:
            refuse("duplicate_receipt", f"dossier already received at {state.received_at}")
        return
    if not state.exists:
        refuse("unknown_dossier", f"{etype} for a dossier that was never received")
    if state.closed and etype not in AFTER_END:
        refuse("after_end", f"{etype} after the dossier was {state.status.lower()}")
    occurred = datetime.fromisoformat(envelope["occurred_at"])
    if (
        state.last_occurred_at is not None
        and occurred < state.last_occurred_at - ordering_tolerance
    ):
        refuse(
            "occurred_before_previous",
            f"occurred_at {envelope['occurred_at']} is more than {ordering_tolerance} before "
            f"the previous event ({state.last_occurred_at.isoformat()})",
        )
    if etype == "ResultReturned" and state.result is None:
        refuse("return_without_result", "a result is returned that was never issued")
    if etype == "ResultIssued" and state.result is not None:
        refuse("second_result", f"a result ({state.result}) was already issued")
    if etype == "SupplementReceived" and state.open_supplement_requests == 0:
        refuse("supplement_without_request", "no supplement request is open")
    if etype == "ClockResumed" and not state.paused:
        refuse("resume_without_pause", "the clock is not paused")
    if etype == "ClockPaused" and state.paused:
        refuse("pause_while_paused", "the clock is already paused")


def evolve(state: Lifecycle, envelope: dict[str, Any]) -> Lifecycle:
    """Fold one (already checked) event into the lifecycle state."""
    etype = envelope["type"]
    data = envelope["data"]
    occurred = datetime.fromisoformat(envelope["occurred_at"])
    last = occurred if state.last_occurred_at is None else max(occurred, state.last_occurred_at)
    common = {
        "last_occurred_at": last,
        "last_hash": envelope.get("hash"),
        "events": state.events + 1,
    }
    match etype:
        case "DossierReceived":
            return state.replace(
                dossier_id=envelope["dossier_id"],
                status=RECEIVED,
                rule_set=data.get("rule_set"),
                received_at=occurred,
                **common,
            )
        case "HandedOver" | "StepCompleted" | "TransferredToAgency":
            status = (
                state.status if state.status in (AWAITING_SUPPLEMENT, RESOLVED) else IN_PROGRESS
            )
            return state.replace(status=status, **common)
        case "SupplementRequested":
            return state.replace(
                status=AWAITING_SUPPLEMENT if state.result is None else state.status,
                open_supplement_requests=state.open_supplement_requests + 1,
                supplement_requests=state.supplement_requests + 1,
                **common,
            )
        case "SupplementReceived":
            return state.replace(
                status=IN_PROGRESS if state.result is None else state.status,
                open_supplement_requests=0,
                **common,
            )
        case "ClockPaused":
            return state.replace(paused=True, **common)
        case "ClockResumed":
            return state.replace(paused=False, **common)
        case "ApologyIssued":
            return state.replace(apologies=state.apologies + 1, **common)
        case "ResultIssued":
            return state.replace(status=RESOLVED, result=data["decision"], **common)
        case "ResultReturned":
            return state.replace(status=RETURNED, **common)
        case "DossierWithdrawn":
            return state.replace(status=WITHDRAWN, **common)
        case "FeedbackGiven":
            return state.replace(**common)
        case _:
            raise TypeError(f"unknown event type {etype!r}")


def fold(envelopes: list[dict[str, Any]], state: Lifecycle = EMPTY) -> Lifecycle:
    """Replay a dossier's events from ``state``."""
    for env in envelopes:
        state = evolve(state, env)
    return state
