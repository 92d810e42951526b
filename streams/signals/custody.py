"""Custody signals (brief §8.5, 8.6, 8.9; §4.4, §4.7, §5): who holds the file, how long.

* ``late_forwarding``: the first hand-over out of the desk comes after the 15:00
  rule's deadline (:meth:`BusinessCalendar.forwarding_deadline`: online at once,
  paper the same working day or the next opening after the cutoff) plus the rule
  set's ``forwarding_grace``; a timer fires it when that passes with no hand-over.
  An intake supplement request stops that clock; the supplement restarts it.
* ``idle_beyond_allotment``: a holding (from a ``HandedOver``, or a liên thông
  ``TransferredToAgency``) outlives its step budget (the hand-over's ``budget``,
  else the dossier's allowance) times the rule set's last ``idle_thresholds``
  share: office time for working units, elapsed time otherwise, less supplement
  waits and clock pauses. A holding ends at the holder's ``StepCompleted`` (that
  step, or by the holder), the next hand-over out, the result, the return or a
  withdrawal; a transfer for consultation ends at a completed step of the
  consulted agency. Fired by a timer the moment the budget runs out.
* ``ping_pong``: A -> B -> A at least ``ping_pong_round_trips`` times (a hand-over
  that reverses the previous one, not itself reversed), or more hand-overs than
  the route (catalog steps - 1) plus ``ping_pong_extra_handovers``.
* ``same_official_receive_approve``: the official who decides (result, or the
  approval step) also received or appraised the dossier (acted as ``appraiser``, or
  completed an appraisal step), where the rule set requires separation of duties
  and the procedure or agency is not delegated (then the desk need not forward).

Pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from projections import state
from streams.signals.common import US, Ctx, add_duration, office_span, parse

_ZERO = timedelta(0)


# --- late forwarding (15:00 rule) ------------------------------------------------------


def _arm_forwarding(ctx: Ctx, complete_at: datetime) -> None:
    cal, rs, facts, delegated = ctx.cal, ctx.rs, ctx.facts, ctx.config.delegated
    if delegated and (facts["procedure_code"] in delegated or facts["agency"] in delegated):
        return  # the desk may decide itself (17(5)): nothing to forward
    deadline = cal.forwarding_deadline(complete_at, ctx.facts["channel"])
    ctx.arm("fwd", add_duration(cal, deadline, rs.forwarding_grace) + US)


def _forwarding_fire(ctx: Ctx, limit: datetime, at: datetime, ids: list[str]) -> None:
    ctx.emit(
        "late_forwarding",
        "warning",
        anchor="forwarding",
        event_ids=ids,
        params={
            "rule": "brief-8.5",
            "channel": ctx.facts["channel"],
            "cutoff": ctx.rs.forwarding_cutoff.isoformat(),
            "grace": ctx.rs.forwarding_grace.to_json(),
            "limit": limit.isoformat(),
        },
        detected_at=at.isoformat() if ctx.env is None else None,
        official_id=ctx.st.get("recv") if ctx.env is None else None,
        once="late_forwarding",
    )
    ctx.arm("fwd", None)


def forwarding_on_timer(ctx: Ctx, at: datetime) -> None:
    timers = ctx.st.get("t") or {}
    if "fwd" not in timers:
        return
    _forwarding_fire(ctx, parse(timers["fwd"]) - US, at, [ctx.st["rid"]])


def _forwarded(ctx: Ctx, at: datetime, event_id: str) -> None:
    timers = ctx.st.get("t") or {}
    if "fwd" in timers:
        limit = parse(timers["fwd"]) - US
        if at > limit:
            _forwarding_fire(ctx, limit, at, [ctx.st["rid"], event_id])
        ctx.arm("fwd", None)
    ctx.st["fw"] = 1
    ctx.st.pop("fw_wait", None)


# --- holdings and their budgets --------------------------------------------------------


def _budget(ctx: Ctx, spec: dict[str, Any] | None) -> tuple[dict[str, Any], str] | None:
    if spec is None:
        spec, source = ctx.facts["allowance"], "allowance"
    else:
        source = "step_budget"
    d = state.duration(spec)
    if d.unit != "same_day" and not d.value:
        return None  # a zero budget sets no expectation
    return spec, source


def _share(ctx: Ctx) -> float:
    return max(ctx.rs.idle_thresholds, default=1.0)


def _used(
    ctx: Ctx, h: dict[str, Any], at: datetime
) -> tuple[timedelta, timedelta | None, datetime | None, bool]:
    """(time used, budget as a span, the instant it would run out if nothing changes,
    whether the clock stands still now)."""
    start = parse(h["at"])
    d = state.duration(h["b"])
    cal = ctx.cal_for(h.get("ag"))
    facts = ctx.facts
    spans = []
    still = False
    for entries in (facts["supplements"], facts["pauses"]):
        for entry in entries:
            if entry[1] is None and parse(entry[0]) <= at:
                still = True
        spans.extend(state.intervals(entries, at) if entries else [])
    spans = [(max(a, start), b) for a, b in spans if b > start]
    share = _share(ctx)
    if d.unit == "same_day":
        due = cal.due(start, d)
        return (at - start, due - start, due + US, False)
    office = office_span(cal, d)
    if office is not None:
        used = cal.working_time(start, at, spans) if at > start else _ZERO
        budget = office * share
        out = None if still else cal.add_working_time(at, max(budget - used, _ZERO) + US)
        return used, budget, out, still
    days = d.value * (ctx.config.month_days if d.unit == "months" else 1)
    budget = timedelta(days=days) if d.unit in ("calendar_days", "months") else d.as_timedelta()
    budget = budget * share
    waited = sum((b - a for a, b in spans if b > a), _ZERO)
    used = (at - start) - waited if at > start else _ZERO
    out = None if still else at + max(budget - used, _ZERO) + US
    return used, budget, out, still


def _tag(key: str) -> str:
    return "idle" if key == "h" else "idle_c"


def _open(
    ctx: Ctx,
    key: str,
    event_id: str,
    at: str,
    step: str,
    to: str | None,
    agency: str,
    budget: dict[str, Any] | None,
) -> None:
    b = _budget(ctx, budget)
    if b is None:
        ctx.st.pop(key, None)
        ctx.arm(_tag(key), None)
        return
    h = {"id": event_id, "at": at, "step": step, "to": to, "ag": agency, "b": b[0], "src": b[1]}
    ctx.st[key] = h
    _rearm_holding(ctx, key, parse(at))


def _rearm_holding(ctx: Ctx, key: str, at: datetime) -> None:
    h = ctx.st.get(key)
    if h is None:
        return
    _, _, out, _ = _used(ctx, h, at)
    ctx.arm(_tag(key), out)


def _judge(ctx: Ctx, key: str, at: datetime, closing: str | None) -> None:
    """Fire if the holding has outlived its budget at ``at``."""
    h = ctx.st.get(key)
    if h is None or h.get("f"):
        return
    used, budget, out, _ = _used(ctx, h, at)
    if budget is None or used <= budget:
        if closing is None:
            ctx.arm(_tag(key), out)  # a pause moved the instant: wait again
        return
    h["f"] = 1
    ids = [h["id"]] + ([closing] if closing else [])
    ratio = used / (budget / _share(ctx)) if budget else None
    ctx.emit(
        "idle_beyond_allotment",
        "severe" if ratio is not None and ratio >= 2 else "warning",
        anchor=h["id"],
        event_ids=ids,
        params={
            "rule": "brief-8.5",
            "step": h["step"],
            "budget": h["b"],
            "budget_source": h["src"],
            "used_share": None if ratio is None else round(ratio, 3),
            "threshold": _share(ctx),
            "held_since": h["at"],
        },
        detected_at=at.isoformat() if ctx.env is None else None,
        official_id=h["to"],
    )
    ctx.arm(_tag(key), None)


def _close(ctx: Ctx, key: str, at: datetime, event_id: str) -> None:
    if key in ctx.st:
        armed = (ctx.st.get("t") or {}).get(_tag(key))
        # the armed instant is when the budget runs out (re-armed whenever a wait or a
        # pause moves it): before it, nothing to judge
        if armed is None or at >= parse(armed):
            _judge(ctx, key, at, event_id)
        del ctx.st[key]
    ctx.arm(_tag(key), None)


def holding_on_timer(ctx: Ctx, tag: str, at: datetime) -> None:
    _judge(ctx, "h" if tag == "idle" else "c", at, None)


def rearm_holdings(ctx: Ctx, at: datetime) -> None:
    """A supplement or a pause started or ended: the budgets' instants moved."""
    for key in ("h", "c"):
        if key in ctx.st:
            _rearm_holding(ctx, key, at)


# --- events ------------------------------------------------------------------------------


def on_receipt(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    ctx.st["recv"] = env["actor"]["id"]
    _arm_forwarding(ctx, parse(env["occurred_at"]))


def on_handover(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    at = parse(env["occurred_at"])
    eid = env["event_id"]
    data = env["data"]
    st = ctx.st
    if not st.get("fw"):
        _forwarded(ctx, at, eid)
    entry = ctx.facts["handovers"][-1]
    if env["type"] == "HandedOver":
        _close(ctx, "h", at, eid)
        _close(ctx, "c", at, eid)
        if len(st.get("held", ())) < 8:
            _add(st, "held", data["to_official"])  # whom a rating speaks of (§8.13)
        _open(
            ctx,
            "h",
            eid,
            env["occurred_at"],
            data["step"],
            data["to_official"],
            data["to_agency"],
            data.get("budget"),
        )
    else:  # liên thông: the lead keeps the file; the consulted body gets a sub-clock
        _close(ctx, "c", at, eid)
        _open(
            ctx,
            "c",
            eid,
            env["occurred_at"],
            data["task"],
            None,
            data["to_agency"],
            data.get("budget"),
        )
    _ping_pong(ctx, entry)


def on_step(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    at = parse(env["occurred_at"])
    step = env["data"]["step"]
    actor = env["actor"]
    st = ctx.st
    if step in ctx.config.appraisal_steps or actor["role"] == "appraiser":
        _add(st, "appr", actor["id"])
    if step in ctx.config.approval_steps:
        _add(st, "aps", actor["id"])
    h = st.get("h")
    if h is not None and (step == h["step"] or actor["id"] == h["to"]):
        _close(ctx, "h", at, env["event_id"])
    c = st.get("c")
    if c is not None and actor["agency"] == c["ag"]:
        _close(ctx, "c", at, env["event_id"])


def on_supplement(ctx: Ctx) -> None:
    """A supplement request or answer: the forwarding clock and the budgets move."""
    env = ctx.env
    assert env is not None
    at = parse(env["occurred_at"])
    st = ctx.st
    if not st.get("fw"):
        if env["type"] == "SupplementRequested":
            ctx.arm("fwd", None)  # intake: incomplete, no forwarding clock yet
            st["fw_wait"] = 1
        elif st.get("fw_wait"):
            _arm_forwarding(ctx, at)
    if env["type"] == "SupplementRequested" and env["actor"]["role"] == "appraiser":
        _add(st, "appr", env["actor"]["id"])
    rearm_holdings(ctx, at)


def on_result(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    at = parse(env["occurred_at"])
    st = ctx.st
    ctx.arm("fwd", None)
    st["fw"] = 1
    _close(ctx, "h", at, env["event_id"])
    _close(ctx, "c", at, env["event_id"])
    if env["type"] == "ResultIssued":
        _separation(ctx, env)


def _add(st: dict[str, Any], key: str, official: str | None) -> None:
    if official is None:
        return
    ids = st.setdefault(key, [])
    if official not in ids:
        ids.append(official)


# --- ping-pong -------------------------------------------------------------------------


def _route(ctx: Ctx) -> int:
    catalog, facts = ctx.catalog, ctx.facts
    if catalog is not None and facts["procedure_code"] in catalog:
        for v in catalog.versions(facts["procedure_code"]):
            if v.version == facts["procedure_version"]:
                return max(1, len(v.steps) - 1)
    return ctx.config.default_route_handovers


def _ping_pong(ctx: Ctx, entry: dict[str, Any]) -> None:
    st = ctx.st
    a = entry["from_official"] or entry["from_agency"]
    b = entry["to_official"] or entry["to_agency"]
    last = st.get("pp")
    reverses = last is not None and last[0] == b and last[1] == a and not last[2]
    if reverses:
        st["rt"] = st.get("rt", 0) + 1
    st["pp"] = [a, b, 1 if reverses else 0]
    if ctx.fired("ping_pong"):
        return
    handovers = ctx.facts["handovers"]
    trips = st.get("rt", 0)
    extra = ctx.config.ping_pong_extra_handovers
    many = len(handovers) > 1 + extra and len(handovers) > _route(ctx) + extra
    if trips >= ctx.config.ping_pong_round_trips or many:
        route = _route(ctx)
        n = max(2 * ctx.config.ping_pong_round_trips, 2)
        ctx.emit(
            "ping_pong",
            "warning",
            anchor=entry["event_id"],
            event_ids=[h["event_id"] for h in handovers[-n:]],
            params={
                "rule": "brief-8.6",
                "round_trips": trips,
                "handovers": len(handovers),
                "route_handovers": route,
                "extra_allowed": extra,
                "between": [a, b],
            },
            once="ping_pong",
        )


# --- separation of duties ----------------------------------------------------------


def _separation(ctx: Ctx, env: dict[str, Any]) -> None:
    rs, st, facts, cfg = ctx.rs, ctx.st, ctx.facts, ctx.config
    if not rs.separation_of_duties:
        return
    if facts["procedure_code"] in cfg.delegated or facts["agency"] in cfg.delegated:
        return
    deciders = [env["actor"]["id"], *st.get("aps", [])]
    for who in deciders:
        roles = []
        if who == st.get("recv"):
            roles.append("received")
        if who in st.get("appr", ()):
            roles.append("appraised")
        if roles:
            ctx.emit(
                "same_official_receive_approve",
                "severe",
                anchor=env["event_id"],
                event_ids=[st["rid"], env["event_id"]] if "rid" in st else [env["event_id"]],
                params={"rule": "brief-8.9", "official": who, "also": roles},
                official_id=who,
                once="same_official_receive_approve",
            )
            return
