"""The current state of a dossier, as a pure fold over its events.

Two layers, so that a replay stays cheap and a stored fold stays exact:

* :func:`evolve` folds one stored event into a *fact sheet*: a plain dict of
  JSON values (instants as the ISO strings the events carry, lists never
  tuples) that round-trips through JSON unchanged. The runner stores it with
  the read model and resumes from it, so an interrupted run and an
  uninterrupted one reach the same bytes.
* :func:`view` derives what an auditor reads (status, holder, deadlines,
  working time used and left, on-time class) from a fact sheet, the
  :class:`~ledger.domain.rules.RuleBook` and an instant ``now``; every deadline comes
  from the working-day clock of the rule set pinned at receipt.

Deadlines (domain brief §4): the deadline of record is the receipt's
``appointment_at`` when given, else the computed due. Supplements follow the
rule set's ``supplement_mode``: ``restart`` starts the allowance again from the
last ``SupplementReceived`` (whose ``new_appointment_at``, the appointment synced
to the portal, wins when given, as the slip's does); ``pause`` subtracts the waiting time. Both figures
are kept (``due_restart_at``, ``due_pause_at``); ``original_due_at`` is the one
the mode selects, and an apology's new appointment moves only
``current_due_at``. Clock pauses (``ClockPaused``/``ClockResumed``) extend the
deadline in both modes.

Pure: standard library and the ledger's pure modules; no I/O, no wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ledger.domain.deadlines import classify_finished, classify_open
from ledger.domain.durations import Duration
from ledger.domain.events import Recorded
from ledger.domain.lifecycle import (
    AWAITING_SUPPLEMENT,
    IN_PROGRESS,
    RECEIVED,
    RESOLVED,
    RETURNED,
    TERMINAL,
    WITHDRAWN,
)
from ledger.domain.rules import RuleBook, RuleSet
from ledger.domain.working_calendar import BusinessCalendar

Facts = dict[str, Any]
"""A dossier's fact sheet: JSON values only (see the module docstring)."""

EMPTY: Facts = {}

INTAKE_STEP = "intake"


def _later(a: str | None, b: str) -> str:
    """The later of two ISO instants (business time can arrive out of order)."""
    if a is None:
        return b
    if len(a) == len(b) and a[-6:] == b[-6:]:  # same format and offset: text order is time order
        return b if b >= a else a
    return b if datetime.fromisoformat(b) >= datetime.fromisoformat(a) else a


def evolve(state: Facts, recorded: Recorded) -> Facts:
    """Fold one stored event into a dossier's fact sheet (a new dict; never mutates)."""
    return evolve_into(dict(state), recorded.position, recorded.envelope)


def evolve_into(s: Facts, position: int, env: dict[str, Any]) -> Facts:
    """Fold one stored event into ``s`` itself and return it (the rebuild's fold).

    Only ``s``'s own keys are set: nested lists and dicts are always replaced,
    never changed, so a sheet that shared them with ``s`` stays as it was. This
    saves :func:`evolve`'s copy of the whole sheet per event when the caller
    owns ``s``.
    """
    etype = env["type"]
    data = env["data"]
    at = env["occurred_at"]
    if not s and etype != "DossierReceived":
        raise ValueError(
            f"dossier {env['dossier_id']}: {etype} at position {position} "
            "before its DossierReceived"
        )
    s["last_position"] = position
    s["last_occurred_at"] = _later(s.get("last_occurred_at"), at)
    s["events"] = s.get("events", 0) + 1
    resolved = s.get("result") is not None
    match etype:
        case "DossierReceived":
            actor = env["actor"]
            s.update(
                dossier_id=env["dossier_id"],
                rule_set=data.get("rule_set"),
                procedure_code=data["procedure_code"],
                procedure_version=data["procedure_version"],
                agency=data["agency"],
                channel=data["channel"],
                lead_agency=data.get("lead_agency"),
                received_at=at,
                allowance=dict(data["processing_time"]),
                appointment_at=data.get("appointment_at"),
                status=RECEIVED,
                holder=actor["id"],
                holder_agency=actor["agency"],
                holder_since=at,
                step=INTAKE_STEP,
                step_budget=None,
                handovers=[],
                pauses=[],
                supplements=[],
                apologies=[],
                result=None,
                result_at=None,
                returned_at=None,
                withdrawn_at=None,
                feedback=0,
            )
        case "HandedOver" | "TransferredToAgency":
            transfer = etype == "TransferredToAgency"
            entry = {
                "seq": len(s["handovers"]) + 1,
                "kind": etype,
                "position": position,
                "event_id": env["event_id"],
                "at": at,
                "from_official": s["holder"] if transfer else data["from_official"],
                "from_agency": s["holder_agency"] if transfer else data["from_agency"],
                "to_official": None if transfer else data["to_official"],
                "to_agency": data["to_agency"],
                "step": data["task"] if transfer else data["step"],
                "budget": data.get("budget"),
                "acknowledged": None if transfer else data.get("acknowledged"),
                "note": data.get("note"),
                "completed_at": None,
            }
            s["handovers"] = [*s["handovers"], entry]
            s["holder"] = entry["to_official"]
            s["holder_agency"] = entry["to_agency"]
            s["holder_since"] = at
            s["step"] = entry["step"]
            s["step_budget"] = entry["budget"]
            if s["status"] not in (AWAITING_SUPPLEMENT, RESOLVED):
                s["status"] = IN_PROGRESS
        case "StepCompleted":
            handovers = s["handovers"]
            if handovers and handovers[-1]["completed_at"] is None:
                handovers = handovers.copy()  # a new list and entry: the old ones may be shared
                handovers[-1] = {**handovers[-1], "completed_at": at}
                s["handovers"] = handovers
            if s["status"] == RECEIVED:
                s["status"] = IN_PROGRESS
        case "SupplementRequested":
            s["supplements"] = [*s["supplements"], [at, None, data.get("stage")]]
            if not resolved:
                s["status"] = AWAITING_SUPPLEMENT
        case "SupplementReceived":
            s["supplements"] = [
                [a, b if b is not None else at, st] for a, b, st in s["supplements"]
            ]
            if data.get("new_appointment_at") is not None:
                s["restart_appointment_at"] = data["new_appointment_at"]
            if not resolved:
                s["status"] = IN_PROGRESS
        case "ClockPaused":
            s["pauses"] = [*s["pauses"], [at, None, data.get("reason")]]
        case "ClockResumed":
            s["pauses"] = [[a, b if b is not None else at, r] for a, b, r in s["pauses"]]
        case "ApologyIssued":
            s["apologies"] = [
                *s["apologies"],
                [at, data.get("new_appointment_at"), data.get("reason")],
            ]
        case "ResultIssued":
            # The holder's step ends with the result; the desk's return step starts.
            s.update(
                status=RESOLVED,
                result=data["decision"],
                result_at=at,
                step="return",
                step_budget=None,
                holder_since=at,
            )
        case "ResultReturned":
            s.update(status=RETURNED, returned_at=at)
        case "DossierWithdrawn":
            s.update(status=WITHDRAWN, withdrawn_at=at)
        case "FeedbackGiven":
            s["feedback"] = s.get("feedback", 0) + 1
        case _:
            raise TypeError(f"unknown event type {etype!r}")
    return s


def fold(records: list[Recorded], state: Facts = EMPTY) -> Facts:
    """Replay a dossier's events (in ledger order) from ``state``."""
    for rec in records:
        state = evolve(state, rec)
    return state


# --- derived view -------------------------------------------------------------


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def calendar(rules: RuleBook, facts: Facts, agency: str | None = None) -> BusinessCalendar:
    """The working-day clock of the rule set pinned at receipt, for an agency's office hours."""
    return BusinessCalendar.for_rules(rule_set(rules, facts), agency or facts["agency"])


def rule_set(rules: RuleBook, facts: Facts) -> RuleSet:
    rid = facts.get("rule_set")
    if rid is None:  # events from before the ledger pinned rule sets
        return rules.in_force(datetime.fromisoformat(facts["received_at"]))
    return rules.get(rid)


def intervals(pairs: list[list[Any]], now: datetime) -> list[tuple[datetime, datetime]]:
    """(start, end) pairs from fact-sheet entries; an open one runs until ``now``."""
    out = []
    for entry in pairs:
        start = datetime.fromisoformat(entry[0])
        if start > now:
            continue
        end = now if entry[1] is None else min(datetime.fromisoformat(entry[1]), now)
        out.append((start, end))
    return out


def end_of(facts: Facts) -> datetime | None:
    """The end of the dossier's clock (766): processed, else returned, else withdrawn."""
    for key in ("result_at", "returned_at", "withdrawn_at"):
        if facts.get(key) is not None:
            return datetime.fromisoformat(facts[key])
    return None


def as_written(text: str) -> bool:
    """Whether ``datetime.fromisoformat(text).isoformat() == text``, for a ``text`` that
    parses: the ``YYYY-MM-DDTHH:MM:SS±HH:MM`` form (no fraction, no ``Z``, not the
    ``-00:00`` that prints as ``+00:00``). The facts keep the events' own texts, so an
    instant read from them is then shown as it was written, without formatting it."""
    return (
        len(text) == 25
        and text[10] == "T"
        and text[22] == ":"
        and text[19] in "+-"
        and text[4] == "-"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
        and text[19:] != "-00:00"
    )


_TEXTS: dict[int, tuple[datetime, str]] = {}
_TEXTS_MAX = 10_000
"""The clock's shared instants are a few thousand (days times allowances); every other
instant formatted here is a new object that the cache keeps alive until it is cleared,
so a larger cap only holds more of those (measured: at 100,000 the rebuild's peak
memory grew by ~60 MB between 250,000 and 1,000,000 events, as the cache filled)."""


def iso(instant: datetime) -> str:
    """``instant.isoformat()``, remembered per object (bounded).

    The clock hands out one object per due instant that depends on a day only
    (the close of office hours, a share of a day after it), so most deadlines are
    formatted once per process. The cache holds the object itself: an id is only
    reused after its object is gone, and then the ``is`` check fails.
    """
    hit = _TEXTS.get(id(instant))
    if hit is not None and hit[0] is instant:
        return hit[1]
    text = instant.isoformat()
    if len(_TEXTS) >= _TEXTS_MAX:
        _TEXTS.clear()
    _TEXTS[id(instant)] = (instant, text)
    return text


_ZERO = timedelta(0)
_DURATIONS: dict[tuple[Any, str], Duration] = {}


def duration(spec: Any) -> Duration:
    """``Duration.parse`` of a fact sheet's ``{"value", "unit"}``, shared per distinct value.

    Durations are immutable and a province uses a few dozen allowances and
    budgets, so one parse (and validation) per distinct value serves every dossier.
    """
    if type(spec) is not dict:
        return Duration.parse(spec)
    key = (spec.get("value"), spec["unit"])
    d = _DURATIONS.get(key)
    if d is None:
        d = Duration.parse(spec)
        if len(_DURATIONS) < 10_000:
            _DURATIONS[key] = d
    return d


def _text(instant: datetime, known: datetime, known_text: str | None) -> str:
    """``instant.isoformat()``, taken from ``known_text`` when ``instant`` is the instant
    parsed from it (a deadline of record read from the slip's appointment)."""
    if instant is known and known_text is not None:
        return known_text
    return iso(instant)


def working_total(cal: BusinessCalendar, spans: list[tuple[datetime, datetime]]) -> timedelta:
    """Office time in each span, added up."""
    if not spans:
        return _ZERO
    return sum((cal.working_time(a, b) for a, b in spans), _ZERO)


def view(facts: Facts, rules: RuleBook, now: datetime | None = None) -> dict[str, Any]:
    """What the dossier looks like at ``now`` (default: its last event's business time).

    The rebuild derives this for every dossier: empty pause, supplement and apology
    lists skip their work, :func:`end_of` is written out, and a due instant pushed
    back by pauses is moved only when there is something to add.
    """
    if not facts:
        raise ValueError("no events: the dossier was never received")
    fromiso = datetime.fromisoformat
    rs = rule_set(rules, facts)
    cal = BusinessCalendar.for_rules(rs, facts["agency"])
    last_at = facts["last_occurred_at"]
    given = now is not None
    if not given:
        now = fromiso(last_at)
    received = fromiso(facts["received_at"])
    allowance = duration(facts["allowance"])
    ended = facts.get("result_at")
    if ended is None:
        ended = facts.get("returned_at")
        if ended is None:
            ended = facts.get("withdrawn_at")
    end = None if ended is None else fromiso(ended)
    until = min(end, now) if end is not None else now

    computed_due = cal.due(received, allowance)
    appointment_at = facts.get("appointment_at")
    if appointment_at is None:
        base_due, base_text = computed_due, None
    else:
        base_due = fromiso(appointment_at)
        base_text = appointment_at if as_written(appointment_at) else None

    supplements = facts["supplements"]
    pause_list = facts["pauses"]
    clock_pauses = intervals(pause_list, until) if pause_list else []
    waits = intervals(supplements, until) if supplements else []
    paused_clock = working_total(cal, clock_pauses) if clock_pauses else _ZERO
    waited = working_total(cal, waits) if waits else _ZERO

    restart_from = None
    open_request = None
    if supplements:
        answered = [fromiso(e[1]) for e in supplements if e[1] is not None]
        restart_from = max(answered) if answered else None
        open_request = next((e[0] for e in supplements if e[1] is None), None)
    if restart_from is None:
        restart_base = base_due
    elif facts.get("restart_appointment_at") is not None:
        # the restarted appointment as the desk issued it wins, like the slip's (§4.5)
        restart_base = fromiso(facts["restart_appointment_at"])
    else:
        restart_base = cal.due(restart_from, allowance)
    due_restart = (
        cal.add_working_time(restart_base, paused_clock) if paused_clock > _ZERO else restart_base
    )
    paused = paused_clock + waited
    due_pause = cal.add_working_time(base_due, paused) if paused > _ZERO else base_due
    mode = rs.supplement_mode
    original_due = due_pause if mode == "pause" else due_restart
    current_due = original_due
    apologies = facts["apologies"]
    if apologies:
        new_dates = [a[1] for a in apologies if a[1] is not None]
        if new_dates:
            current_due = fromiso(new_dates[-1])

    if mode == "pause":
        clock_start, pauses = received, clock_pauses + waits
    else:
        clock_start = received if restart_from is None else restart_from
        pauses = (
            clock_pauses + [(a, b) for a, b in waits if a >= clock_start] if waits else clock_pauses
        )
    tz = cal.tz
    if until.tzinfo is None or original_due.tzinfo is None or clock_start.tzinfo is None:
        for name, instant in (("now", until), ("due", original_due), ("clock start", clock_start)):
            if instant.tzinfo is None:
                raise ValueError(
                    f"{name}: naive datetime {instant.isoformat()} (an offset is required)"
                )
    # Office time as differences of office counts, ``until`` counted once (the same µs
    # as working_time; total_seconds() is µs over 10**6: int() of that, truncated).
    until_us = cal.office_us(until.astimezone(tz))
    if until <= clock_start:
        used_s = 0
    elif pauses:
        used_s = int(cal.working_time(clock_start, until, pauses).total_seconds())
    else:
        used_s = int((until_us - cal.office_us(clock_start.astimezone(tz))) / 1_000_000)
    left_s = int((cal.office_us(original_due.astimezone(tz)) - until_us) / 1_000_000)

    requests = len(supplements)
    granularity = rs.granularity
    if mode == "pause" and requests > rs.max_supplement_requests:
        on_time = "LATE"  # 766: more than one request counts as late
    elif end is not None and end <= now:
        on_time = classify_finished(end, original_due, granularity, tz)
    elif open_request is not None and mode == "pause":
        # 766: a dossier still waiting for a supplement ends at the request.
        on_time = classify_finished(fromiso(open_request), original_due, granularity, tz)
    elif open_request is not None:
        on_time = "WITHIN_DEADLINE"  # restart: no clock runs while waiting
    else:
        on_time = classify_open(now, original_due, granularity, tz)

    as_of = last_at if not given and as_written(last_at) else now.isoformat()
    if end is None:
        ended_at = None
    elif not given and ended == last_at:
        ended_at = as_of  # parsed from equal text: the same instant and offset
    else:
        ended_at = ended if as_written(ended) else end.isoformat()
    status = facts["status"]
    return {
        "dossier_id": facts["dossier_id"],
        "status": status,
        "open": status not in TERMINAL,
        "procedure_code": facts["procedure_code"],
        "procedure_version": facts["procedure_version"],
        "agency": facts["agency"],
        "channel": facts["channel"],
        "rule_set": rs.id,
        "supplement_mode": mode,
        "received_at": facts["received_at"],
        "holder": facts["holder"],
        "holder_agency": facts["holder_agency"],
        "holder_since": facts["holder_since"],
        "step": facts["step"],
        "allowance": allowance.to_json(),
        "appointment_at": facts.get("appointment_at"),
        "computed_due_at": iso(computed_due),
        "original_due_at": _text(original_due, base_due, base_text),
        "current_due_at": _text(current_due, base_due, base_text),
        "due_restart_at": _text(due_restart, base_due, base_text),
        "due_pause_at": _text(due_pause, base_due, base_text),
        "working_used_s": used_s,
        "working_left_s": left_s,
        "paused_s": int(paused.total_seconds()),
        "clock_paused": any(p[1] is None for p in pause_list) if pause_list else False,
        "pauses": len(pause_list),
        "supplement_requests": requests,
        "awaiting_supplement": open_request is not None,
        "apology_issued": bool(apologies),
        "apologies": len(apologies),
        "result": facts.get("result"),
        "ended_at": ended_at,
        "on_time": on_time,
        "handovers": len(facts["handovers"]),
        "events": facts["events"],
        "last_position": facts["last_position"],
        "last_occurred_at": last_at,
        "as_of": as_of,
    }
