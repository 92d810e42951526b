"""Supplement signals (brief §8.1-8.3; §4.5): repeated, unlisted documents, late requests.

* ``repeated_supplement``: more ``SupplementRequested`` than the rule set's
  ``max_supplement_requests`` (one: "two or more"), fired at the request that
  exceeds it, with the count per stage and in total.
* ``unlisted_document_requested``: a requested or collected document (at receipt,
  in a request, in a supplement received) not on the version's required list at
  receipt (``ledger.domain.catalog``; the receipt's own ``documents`` when the catalog
  does not know the version), or a request that does not go through the desk.
* ``late_supplement_request``: a request (not at intake) after the rule set's
  ``supplement_request_window`` counted from the receipt (Civil Code counting, at
  the rule set's granularity), or a sector override in :class:`SignalConfig`.

Pure.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.deadlines import classify_finished
from ledger.domain.durations import Duration
from streams.signals.common import Ctx, parse


def _version(ctx: Ctx) -> Any:
    """The catalog's procedure version of the receipt, or None if it does not know it."""
    catalog = ctx.catalog
    facts = ctx.facts
    if catalog is None or facts["procedure_code"] not in catalog:
        return None
    for v in catalog.versions(facts["procedure_code"]):
        if v.version == facts["procedure_version"]:
            return v
    return None


def _required(ctx: Ctx) -> tuple[str, ...] | list[str]:
    v = _version(ctx)
    if v is not None:
        return v.documents
    return ctx.st.get("docs", [])


def on_receipt(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    docs = env["data"].get("documents") or []
    v = _version(ctx)
    if v is None:
        ctx.st["docs"] = list(docs)  # the receipt's own list stands in for the catalog's
        return
    extra = [d for d in docs if d not in v.documents]
    if extra:
        _unlisted(ctx, extra, "collected at receipt")


def _unlisted(ctx: Ctx, documents: list[str], how: str, role: str | None = None) -> None:
    env = ctx.env
    assert env is not None
    params: dict[str, Any] = {
        "rule": "brief-8.2",
        "how": how,
        "documents": documents,
        "procedure_version": ctx.facts["procedure_version"],
    }
    if role is not None:
        params["role"] = role
    ctx.emit(
        "unlisted_document_requested",
        "warning",
        anchor=env["event_id"],
        event_ids=[env["event_id"]],
        params=params,
        once="unlisted_document_requested",
    )


def on_request(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    st, rs, data = ctx.st, ctx.rs, env["data"]
    stage = data.get("stage") or "unspecified"
    counts = st.setdefault("req", {})
    counts[stage] = counts.get(stage, 0) + 1
    ids = st.setdefault("req_ids", [])
    if len(ids) <= rs.max_supplement_requests:
        ids.append(env["event_id"])
    total = sum(counts.values())
    if total > rs.max_supplement_requests:
        ctx.emit(
            "repeated_supplement",
            "warning",
            anchor=env["event_id"],
            event_ids=list(ids),
            params={
                "rule": "brief-8.1",
                "requests": total,
                "by_stage": dict(counts),
                "max_supplement_requests": rs.max_supplement_requests,
            },
            once="repeated_supplement",
        )

    required = _required(ctx)
    extra = [d for d in data.get("documents") or [] if d not in required]
    role = env["actor"]["role"]
    if extra:
        _unlisted(ctx, extra, "requested")
    elif role not in ctx.config.desk_roles:
        _unlisted(ctx, [], "requested outside the desk", role)

    if stage != "intake":
        _late_request(ctx, env)


def _window(ctx: Ctx) -> Duration:
    overrides = ctx.config.supplement_window_overrides
    if overrides:
        for key in (ctx.facts["procedure_code"], ctx.facts["agency"]):
            if key in overrides:
                return Duration.parse(overrides[key])
    return ctx.rs.supplement_request_window


def _late_request(ctx: Ctx, env: dict[str, Any]) -> None:
    window = _window(ctx)
    cal = ctx.cal
    received = parse(ctx.facts["received_at"])
    limit = cal.due(received, window)
    at = parse(env["occurred_at"])
    if classify_finished(at, limit, ctx.rs.granularity, cal.tz) != "LATE":
        return
    local = received.astimezone(cal.tz).date()
    ctx.emit(
        "late_supplement_request",
        "warning",
        anchor=env["event_id"],
        event_ids=[env["event_id"]],
        params={
            "rule": "brief-8.3",
            "window": window.to_json(),
            "limit": limit.isoformat(),
            "working_days_after_receipt": cal.working_days_between(
                local, at.astimezone(cal.tz).date()
            ),
        },
        once="late_supplement_request",
    )


def on_received(ctx: Ctx) -> None:
    env = ctx.env
    assert env is not None
    required = _required(ctx)
    extra = [d for d in env["data"].get("documents") or [] if d not in required]
    if extra:
        _unlisted(ctx, extra, "collected with the supplement")
