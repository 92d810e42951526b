"""Conduct signals read off single events (brief §8.7, 8.8, 8.10-8.12), and the facts
routed to the keyed stage (applicants, officials).

* ``superseded_procedure``: the receipt's ``procedure_version`` is not valid on the
  local receipt date (``Catalog.is_valid``), for a procedure the catalog knows; for a
  version it does not know, only when no version of the procedure was in force.
* ``backdated_event``: ``recorded_at - occurred_at`` above the rule set's tolerance
  (``backdating_tolerance_system`` for online dossiers and system actors, else
  ``backdating_tolerance_paper``: office time for working units); critical when
  the event is a clock event recorded after the deadline of record it claims to
  precede; also an ``occurred_at`` earlier than a previous event's.
* ``refusal_without_reason``: a refusal with no (or a blank) reason.
* ``off_duty_receipt``: a receipt on a day the desk does not receive (not a
  reception day of the calendar, or outside the agency's ``duty_schedules``
  weekdays), or staff handling on a non-working day.
* ``online_to_paper`` (within a dossier): an online dossier's result returned on
  paper (in person or by post). Across dossiers: :mod:`streams.signals.applicant`.

Pure.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from ledger.domain.deadlines import classify_finished
from streams.signals.common import OFFICIAL_ROLES, Ctx, local_day, office_span, parse

CLOCK_EVENTS = frozenset(
    {
        "SupplementRequested",
        "SupplementReceived",
        "ClockPaused",
        "ClockResumed",
        "ApologyIssued",
        "ResultIssued",
        "ResultReturned",
        "DossierWithdrawn",
    }
)
_QUICK = timedelta(minutes=1)


def applicant_key(data: dict[str, Any]) -> str | None:
    """The keyed stage's applicant key: the ledger's pseudonym (a digest of the ID number
    for a block that was never sealed, as in tests)."""
    applicant = data.get("applicant") or {}
    pseudo = applicant.get("pseudonym")
    if pseudo:
        return f"applicant:{pseudo}"
    number = applicant.get("id_number")
    if number:
        return "applicant:id-" + hashlib.sha256(str(number).encode()).hexdigest()[:24]
    return None


def on_receipt(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    data = env["data"]
    ctx.st["rid"] = env["event_id"]
    at = parse(env["occurred_at"])
    day = local_day(ctx.cal, at)
    catalog = ctx.catalog
    code, version = data["procedure_code"], data["procedure_version"]
    if catalog is not None and code in catalog and not catalog.is_valid(code, version, day):
        current = catalog.in_force(code, day)
        known = any(v.version == version for v in catalog.versions(code))
        if not known and current is not None:
            return _route_receipt(ctx, env)  # a version the catalog lacks: no dates to judge
        ctx.emit(
            "superseded_procedure",
            "warning",
            anchor=env["event_id"],
            event_ids=[env["event_id"]],
            params={
                "rule": "brief-8.7",
                "procedure_version": version,
                "receipt_day": day.isoformat(),
                "in_force": None if current is None else current.version,
                "why": "version not valid that day" if known else "procedure not published",
            },
            once="superseded_procedure",
        )
    _route_receipt(ctx, env)


def _route_receipt(ctx: Ctx, env: dict[str, Any]) -> None:
    data, facts, st = env["data"], ctx.facts, ctx.st
    key = applicant_key(data)
    if key is not None:
        if facts["channel"] == "online":
            st["ap"] = key
        elif facts["channel"] == "direct":
            ctx.routed.append(
                (
                    key,
                    {
                        "t": "filed",
                        "dossier_id": facts["dossier_id"],
                        "procedure": data["procedure_code"],
                        "at": env["occurred_at"],
                        "event_id": env["event_id"],
                        "official_id": env["actor"]["id"],
                        "agency": facts["agency"],
                        "position": ctx.position,
                    },
                )
            )


def off_duty(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    actor = env["actor"]
    if actor["role"] not in OFFICIAL_ROLES or ctx.fired("off_duty_receipt"):
        return
    cal = ctx.cal
    at = parse(env["occurred_at"])
    day = local_day(cal, at)
    receipt = env["type"] == "DossierReceived"
    why = None
    if receipt and not cal.is_reception_day(day):
        why = "not a reception day"
    elif not receipt and not cal.is_working_day(day):
        why = "handling on a non-working day"
    elif receipt:
        duty = ctx.rs.duty_schedules
        sched = duty.get(actor["agency"]) if duty else None
        if sched is None and duty:
            sched = duty.get(ctx.facts["agency"])
        if sched is not None and day.weekday() not in sched:
            why = "outside the duty weekdays"
    if why is None:
        return
    ctx.emit(
        "off_duty_receipt",
        "warning",
        anchor=env["event_id"],
        event_ids=[env["event_id"]],
        params={"rule": "brief-8.11", "why": why, "day": day.isoformat(), "weekday": day.weekday()},
        once="off_duty_receipt",
    )


def backdated(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    occurred = parse(env["occurred_at"])
    last = ctx.facts["last_occurred_at"]
    if last != env["occurred_at"] and occurred < parse(last):
        ctx.emit(
            "backdated_event",
            "warning",
            anchor=env["event_id"],
            event_ids=[env["event_id"]],
            params={"rule": "brief-8.8", "why": "occurred_at not monotonic", "previous": last},
        )
    recorded_text = env.get("recorded_at")
    if not recorded_text:
        return
    recorded = parse(recorded_text)
    delay = recorded - occurred
    if delay <= _QUICK:
        return
    rs, cal = ctx.rs, ctx.cal
    system = ctx.facts["channel"] == "online" or env["actor"]["role"] == "system"
    tol = rs.backdating_tolerance_system if system else rs.backdating_tolerance_paper
    span = office_span(cal, tol)
    if span is not None:
        # office time never exceeds elapsed time: most delays are settled without the clock
        over = delay > span and cal.working_time(occurred, recorded) > span
    elif tol.unit in ("calendar_days", "months"):
        over = delay > timedelta(days=tol.value * (30 if tol.unit == "months" else 1))
    elif tol.unit == "same_day":
        over = recorded > cal.due(occurred, tol)
    else:
        over = delay > tol.as_timedelta()
    if not over:
        return
    severity, due_text = "warning", None
    if env["type"] in CLOCK_EVENTS:
        due_text = ctx.view(occurred)["original_due_at"]
        due = parse(due_text)
        g = rs.granularity
        if (
            classify_finished(occurred, due, g, cal.tz) != "LATE"
            and classify_finished(recorded, due, g, cal.tz) == "LATE"
        ):
            severity = "critical"
    ctx.emit(
        "backdated_event",
        severity,
        anchor=env["event_id"],
        event_ids=[env["event_id"]],
        params={
            "rule": "brief-8.8",
            "why": "recorded late",
            "tolerance": tol.to_json(),
            "delay_s": int(delay.total_seconds()),
            "due_at": due_text,
        },
    )


def on_result(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    data, facts = env["data"], ctx.facts
    refused = data["decision"] == "refused"
    if refused and not (data.get("reason") or "").strip():
        ctx.emit(
            "refusal_without_reason",
            "severe",
            anchor=env["event_id"],
            event_ids=[env["event_id"]],
            params={"rule": "brief-8.10"},
        )
    if refused and facts["channel"] == "online":
        _setback(ctx, env)
    ctx.routed.append(
        (
            "officials",
            {
                "t": "end",
                "official_id": env["actor"]["id"],
                "agency": env["actor"]["agency"],
                "day": local_day(ctx.cal, parse(env["occurred_at"])).isoformat(),
                "refused": refused,
                "withdrawn": False,
                "late": False,
            },
        )
    )


def on_withdrawn(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    at = parse(env["occurred_at"])
    v = ctx.view(at)
    used, left = v["working_used_s"], v["working_left_s"]
    total = used + max(left, 0)
    late = total > 0 and used / total >= ctx.config.late_end_share
    official = ctx.facts.get("holder") or ctx.st.get("recv")
    if official is None:
        return
    ctx.routed.append(
        (
            "officials",
            {
                "t": "end",
                "official_id": official,
                "agency": ctx.facts.get("holder_agency") or ctx.facts["agency"],
                "day": local_day(ctx.cal, at).isoformat(),
                "refused": False,
                "withdrawn": True,
                "late": late,
                "dossier_id": ctx.facts["dossier_id"],
            },
        )
    )


def on_supplement_request(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    if ctx.facts["channel"] == "online":
        _setback(ctx, env)


def _setback(ctx: Ctx, env: dict[str, Any]) -> None:
    key = ctx.st.get("ap")
    if key is None:
        return
    ctx.routed.append(
        (
            key,
            {
                "t": "setback",
                "dossier_id": ctx.facts["dossier_id"],
                "procedure": ctx.facts["procedure_code"],
                "at": env["occurred_at"],
                "event_id": env["event_id"],
                "type": env["type"],
            },
        )
    )


def on_returned(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    channel = env["data"]["channel"]
    if ctx.facts["channel"] == "online" and channel != "online":
        ctx.emit(
            "online_to_paper",
            "warning",
            anchor=env["event_id"],
            event_ids=[env["event_id"]],
            params={"rule": "brief-8.12", "why": "result returned on paper", "channel": channel},
            once="online_to_paper",
        )


def on_feedback(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    data, st = env["data"], ctx.st
    officials = []
    for who in (st.get("recv"), *st.get("held", ())):
        if who is not None and who not in officials:
            officials.append(who)
    if not officials:
        return
    rating = data.get("rating")
    negative = bool(data.get("complaint")) or (
        rating is not None and rating <= ctx.config.low_rating_max
    )
    ctx.routed.append(
        (
            "officials",
            {
                "t": "fb",
                "officials": officials,
                "agency": ctx.facts["agency"],
                "day": local_day(ctx.cal, parse(env["occurred_at"])).isoformat(),
                "negative": negative,
                "complaint": bool(data.get("complaint")),
            },
        )
    )
