"""Who is told what: the subscriptions file, and which outputs each subscriber gets.

A TOML file names subscribers, their scope, thresholds, cooldown and delivery::

    [[subscriber]]
    id = "head-h60"                       # required, unique
    agencies = ["000.00.03.H60"]          # scope (empty or absent: all)
    procedures = []
    levels = ["three_quarters", "due"]    # deadline alert levels
    kinds = ["low_on_time_rate"]          # other alert kinds
    signals = ["late_without_apology"]    # misconduct signal kinds
    replayed = false                      # also alerts marked replayed
    cooldown = "2h"                       # at most one per subject per 2 h of business time
    [subscriber.thresholds]               # an agency's rolling rate below 95 % on >= 20
    on_time_rate = 0.95
    min_dossiers = 20
    [subscriber.delivery]
    webhook = "http://127.0.0.1:8099/hook"  # POST JSON, Idempotency-Key = output id
    kafka_topic = "dossier.alerts.head-h60"
    retries = 6                             # then the dead-letter table / dossier.dlq
    backoff = "1s"                          # doubled after each failure

:func:`load` validates it, naming the line of every error; :func:`matches` says
which outputs a subscriber gets. Pure apart from reading the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.domain.signal_kinds import ALERT_KINDS
from ledger.domain.signal_kinds import KINDS as SIGNAL_KINDS

LEVELS = ("half", "three_quarters", "due")
SUBSCRIBER_KEYS = {
    "id",
    "name",
    "agencies",
    "procedures",
    "levels",
    "kinds",
    "signals",
    "replayed",
    "cooldown",
    "thresholds",
    "delivery",
}
DELIVERY_KEYS = {"webhook", "kafka_topic", "retries", "backoff", "timeout"}
THRESHOLD_KEYS = {"on_time_rate", "min_dossiers"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class SubscriptionError(ValueError):
    """The subscriptions file is malformed; the message names the line."""


@dataclass(frozen=True)
class Delivery:
    webhook: str | None = None
    kafka_topic: str | None = None
    retries: int = 6
    backoff: float = 1.0
    timeout: float = 5.0


@dataclass(frozen=True)
class Subscriber:
    id: str
    name: str = ""
    agencies: frozenset[str] = frozenset()
    procedures: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    signals: frozenset[str] = frozenset()
    replayed: bool = False
    cooldown: timedelta = timedelta(0)
    on_time_rate: float | None = None
    min_dossiers: int = 20
    delivery: Delivery = field(default_factory=Delivery)

    def in_scope(self, row: dict[str, Any]) -> bool:
        if self.agencies and row.get("agency") not in self.agencies:
            return False
        return not (self.procedures and row.get("procedure_code") not in self.procedures)


def seconds(text: Any, where: str) -> float:
    m = _DURATION.match(str(text))
    if m is None:
        raise SubscriptionError(f"{where}: {text!r} is not a duration (e.g. 30s, 5m, 2h, 1d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _line_of(lines: list[str], index: int, key: str | None) -> int:
    """The line of subscriber ``index``'s header, or of ``key`` inside it (1-based)."""
    headers = [i for i, ln in enumerate(lines) if ln.strip().startswith("[[subscriber]]")]
    if index >= len(headers):
        return 1
    start = headers[index]
    end = headers[index + 1] if index + 1 < len(headers) else len(lines)
    if key is not None:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start, end):
            if pattern.match(lines[i]):
                return i + 1
    return start + 1


def parse(text: str, name: str = "<subscriptions>") -> list[Subscriber]:
    """Subscribers from the file's text; every error names ``name:line``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SubscriptionError(f"{name}: {e}") from None
    lines = text.splitlines()
    unknown = set(doc) - {"subscriber"}
    if unknown:
        key = sorted(unknown)[0]
        line = next((i + 1 for i, ln in enumerate(lines) if key in ln), 1)
        raise SubscriptionError(
            f"{name}:{line}: unknown table or key {key!r} (expected [[subscriber]])"
        )
    raw = doc.get("subscriber", [])
    if not isinstance(raw, list):
        raise SubscriptionError(
            f"{name}:1: 'subscriber' must be an array of tables ([[subscriber]])"
        )
    out: list[Subscriber] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):

        def fail(key: str | None, reason: str, i: int = i) -> SubscriptionError:
            return SubscriptionError(
                f"{name}:{_line_of(lines, i, key)}: subscriber {i + 1}: {reason}"
            )

        for key in entry:
            if key not in SUBSCRIBER_KEYS:
                raise fail(
                    key, f"unknown key {key!r} (known: {', '.join(sorted(SUBSCRIBER_KEYS))})"
                )
        sid = entry.get("id")
        if not isinstance(sid, str) or not sid.strip():
            raise fail("id", "'id' is required (a non-empty string)")
        if sid in seen:
            raise fail("id", f"duplicate id {sid!r}")
        seen.add(sid)

        def names(
            key: str, allowed: tuple[str, ...] | None = None, entry: dict[str, Any] = entry
        ) -> frozenset[str]:
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(key, f"'{key}' must be a list of strings")
            if allowed is not None:
                bad = [v for v in value if v not in allowed]
                if bad:
                    raise fail(key, f"'{key}': unknown {bad[0]!r} (one of {', '.join(allowed)})")
            return frozenset(value)

        delivery_raw = entry.get("delivery", {})
        if not isinstance(delivery_raw, dict):
            raise fail("delivery", "'delivery' must be a table")
        for key in delivery_raw:
            if key not in DELIVERY_KEYS:
                raise fail(
                    key,
                    f"delivery: unknown key {key!r} (known: {', '.join(sorted(DELIVERY_KEYS))})",
                )
        webhook = delivery_raw.get("webhook")
        if webhook is not None and not (
            isinstance(webhook, str) and webhook.startswith(("http://", "https://"))
        ):
            raise fail("webhook", f"delivery.webhook must be an http(s) URL, got {webhook!r}")
        topic = delivery_raw.get("kafka_topic")
        if topic is not None and not (
            isinstance(topic, str) and re.fullmatch(r"[A-Za-z0-9._-]{1,249}", topic)
        ):
            raise fail("kafka_topic", f"delivery.kafka_topic is not a topic name: {topic!r}")
        retries = delivery_raw.get("retries", 6)
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 30:
            raise fail("retries", "delivery.retries must be an integer from 0 to 30")
        thresholds = entry.get("thresholds", {})
        if not isinstance(thresholds, dict):
            raise fail("thresholds", "'thresholds' must be a table")
        for key in thresholds:
            if key not in THRESHOLD_KEYS:
                raise fail(
                    key,
                    f"thresholds: unknown key {key!r} (known: {', '.join(sorted(THRESHOLD_KEYS))})",
                )
        rate = thresholds.get("on_time_rate")
        if rate is not None and not (isinstance(rate, int | float) and 0 < rate <= 1):
            raise fail("on_time_rate", "thresholds.on_time_rate must be a number in (0, 1]")
        min_dossiers = thresholds.get("min_dossiers", 20)
        if not isinstance(min_dossiers, int) or min_dossiers < 1:
            raise fail("min_dossiers", "thresholds.min_dossiers must be a positive integer")
        replayed = entry.get("replayed", False)
        if not isinstance(replayed, bool):
            raise fail("replayed", "'replayed' must be true or false")
        try:
            cooldown = seconds(entry.get("cooldown", "0s"), "cooldown")
            backoff = seconds(delivery_raw.get("backoff", "1s"), "delivery.backoff")
            timeout = seconds(delivery_raw.get("timeout", "5s"), "delivery.timeout")
        except SubscriptionError as e:
            key = str(e).split(":")[0].split(".")[-1]
            raise fail(key, str(e)) from None
        out.append(
            Subscriber(
                id=sid,
                name=str(entry.get("name", "")),
                agencies=names("agencies"),
                procedures=names("procedures"),
                levels=names("levels", LEVELS),
                kinds=names("kinds", ALERT_KINDS),
                signals=names("signals", SIGNAL_KINDS),
                replayed=replayed,
                cooldown=timedelta(seconds=cooldown),
                on_time_rate=None if rate is None else float(rate),
                min_dossiers=min_dossiers,
                delivery=Delivery(webhook, topic, retries, backoff, timeout),
            )
        )
    return out


def load(path: Path) -> list[Subscriber]:
    return parse(path.read_text(encoding="utf-8"), str(path))


def matches(sub: Subscriber, kind: str, row: dict[str, Any]) -> bool:
    """Whether ``sub`` gets this output (``kind``: alert | signal | metric)."""
    if not sub.in_scope(row):
        return False
    if kind == "alert":
        if row["replayed"] and not sub.replayed:
            return False
        if row["kind"] == "deadline":
            return row["level"] in sub.levels
        return row["kind"] in sub.kinds
    if kind == "signal":
        return row["kind"] in sub.signals
    if kind == "metric":  # a final rolling agency row below the subscriber's threshold
        if sub.on_time_rate is None or not row["final"] or row["window"] != "rolling_30d":
            return False
        if row["scope"] != "agency" or row["on_time_rate"] is None:
            return False
        resolved = row["resolved_early"] + row["resolved_on_time"] + row["resolved_late"]
        return resolved >= sub.min_dossiers and row["on_time_rate"] < sub.on_time_rate
    raise ValueError(f"kind: alert, signal or metric (got {kind!r})")


def subject(kind: str, row: dict[str, Any]) -> tuple[str, str, datetime]:
    """(output id, what the cooldown groups by, business instant) of an output."""
    if kind == "alert":
        about = f"alert:{row['kind']}:{row['dossier_id'] or row['official_id'] or row['agency']}"
        return row["alert_id"], about, datetime.fromisoformat(str(row["fired_at"]))
    if kind == "signal":
        about = f"signal:{row['kind']}:{row['dossier_id'] or row['official_id']}"
        return row["signal_id"], about, datetime.fromisoformat(str(row["detected_at"]))
    day = str(row["day"])
    return (
        f"rate:{row['key']}:{day}",
        f"rate:{row['key']}",
        datetime.fromisoformat(day + "T00:00:00+00:00"),
    )
