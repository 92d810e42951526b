"""Official-level alerts (brief §8 items 10 and 13): refusal bursts and harassment.

The dossier detectors route one fact per end (a result, refused or not; a
withdrawal, and whether it came in the last share of the allowance) and per
rating under the key ``officials``; :func:`step` counts them per local day and
official, and :func:`on_day_final` judges every official once a day is final:

* ``refusal_burst``: over the last ``burst_window_working_days`` working days,
  an official's share of ends that are refusals or withdrawals is more than
  ``burst_z`` standard deviations above the other officials' (each with at
  least ``burst_min_volume`` ends; at least ``burst_min_peers`` of them).
* ``harassment``: over the last ``harassment_window_days`` days, an official's
  share of feedback that is a complaint or a low rating exceeds the peers'
  median + ``harassment_k`` x MAD (each with at least ``harassment_min_feedback``).

Each alert at most once per official per window. Pure.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from typing import Any

from ledger.domain.rules import RuleBook, RulesError
from ledger.domain.working_calendar import BusinessCalendar
from streams.outputs import alert
from streams.signals.config import SignalConfig


def step(st: dict[str, Any], fact: dict[str, Any]) -> None:
    day = fact["day"]
    if fact["t"] == "end":
        who = fact["official_id"]
        row = st.setdefault("e", {}).setdefault(day, {}).setdefault(who, [0, 0, 0, 0])
        row[0] += 1
        row[1] += bool(fact["refused"])
        row[2] += bool(fact["withdrawn"])
        row[3] += bool(fact["late"])
        st.setdefault("ag", {})[who] = fact["agency"]
    elif fact["t"] == "fb":
        days = st.setdefault("f", {}).setdefault(day, {})
        for who in fact["officials"]:
            row = days.setdefault(who, [0, 0, 0])
            row[0] += 1
            row[1] += bool(fact["negative"])
            row[2] += bool(fact.get("complaint"))
            st.setdefault("ag", {}).setdefault(who, fact["agency"])


def _sum(by_day: dict[str, dict[str, list[int]]], lo: str, hi: str) -> dict[str, list[int]]:
    total: dict[str, list[int]] = {}
    for day, rows in by_day.items():
        if lo < day <= hi:
            for who, row in rows.items():
                acc = total.get(who)
                if acc is None:
                    total[who] = list(row)
                else:
                    for i, x in enumerate(row):
                        acc[i] += x
    return total


def _end_of(day: date, cal: BusinessCalendar) -> str:
    nxt = day + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=cal.tz).isoformat()


def _recipients(agency: str | None) -> list[str]:
    return [f"head:{agency}", f"inspector:{agency}"]


def _cooled(st: dict[str, Any], key: str, lo: str) -> bool:
    last = st.get("al", {}).get(key)
    return last is None or last <= lo


def on_day_final(
    rules: RuleBook, config: SignalConfig, st: dict[str, Any], day: str, replayed: bool
) -> list[dict[str, Any]]:
    d = date.fromisoformat(day)
    try:
        rule_set = rules.in_force(d)
    except RulesError:  # a day before every rule set: count working days by the earliest
        rule_set = rules.rule_sets[0]
    cal = BusinessCalendar.for_rules(rule_set, None)
    burst_lo = cal.add_working_days(d, -config.burst_window_working_days).isoformat()
    fb_lo = (d - timedelta(days=config.harassment_window_days)).isoformat()
    out = _bursts(config, st, day, burst_lo, cal, replayed) + _harassment(
        config, st, day, fb_lo, cal, replayed
    )
    # forget days no later window needs
    for key, lo in (("e", burst_lo), ("f", fb_lo)):
        rows = st.get(key)
        if rows:
            for old in [k for k in rows if k <= lo]:
                del rows[old]
    return out


def _bursts(
    config: SignalConfig,
    st: dict[str, Any],
    day: str,
    lo: str,
    cal: BusinessCalendar,
    replayed: bool,
) -> list[dict[str, Any]]:
    totals = _sum(st.get("e", {}), lo, day)
    rated = {
        who: ((row[1] + row[2]) / row[0], row)
        for who, row in totals.items()
        if row[0] >= config.burst_min_volume
    }
    n = len(rated)
    if n - 1 < config.burst_min_peers:
        return []
    s = sum(r for r, _ in rated.values())
    ss = sum(r * r for r, _ in rated.values())
    out = []
    for who, (rate, row) in sorted(rated.items()):
        mean = (s - rate) / (n - 1)
        var = max(0.0, (ss - rate * rate) / (n - 1) - mean * mean)
        std = max(var**0.5, config.burst_min_std)
        z = (rate - mean) / std
        key = f"burst:{who}"
        if z <= config.burst_z or not _cooled(st, key, lo):
            continue
        st.setdefault("al", {})[key] = day
        agency = st.get("ag", {}).get(who)
        out.append(
            alert(
                "refusal_burst",
                "severe" if z > 2 * config.burst_z else "warning",
                anchor=f"{who}:{day}",
                fired_at=_end_of(date.fromisoformat(day), cal),
                recipients=_recipients(agency),
                replayed=replayed,
                params={
                    "rule": "brief-8.10",
                    "window_working_days": config.burst_window_working_days,
                    "window_after": lo,
                    "day": day,
                    "ends": row[0],
                    "refusals": row[1],
                    "withdrawals": row[2],
                    "late_withdrawals": row[3],
                    "rate": round(rate, 4),
                    "peers": n - 1,
                    "peers_mean": round(mean, 4),
                    "peers_std": round(std, 4),
                    "z": round(z, 2),
                    "z_threshold": config.burst_z,
                },
                official_id=who,
                agency=agency,
            )
        )
    return out


def _harassment(
    config: SignalConfig,
    st: dict[str, Any],
    day: str,
    lo: str,
    cal: BusinessCalendar,
    replayed: bool,
) -> list[dict[str, Any]]:
    totals = _sum(st.get("f", {}), lo, day)
    rated = {
        who: (row[1] / row[0], row)
        for who, row in totals.items()
        if row[0] >= config.harassment_min_feedback
    }
    if len(rated) < config.harassment_min_peers + 1:
        return []
    rates = [r for r, _ in rated.values()]
    median = statistics.median(rates)
    mad = statistics.median(abs(r - median) for r in rates)
    limit = median + config.harassment_k * max(mad, config.harassment_mad_floor)
    out = []
    for who, (rate, row) in sorted(rated.items()):
        key = f"harassment:{who}"
        if rate <= limit or not _cooled(st, key, lo):
            continue
        st.setdefault("al", {})[key] = day
        agency = st.get("ag", {}).get(who)
        out.append(
            alert(
                "harassment",
                "severe" if row[2] > 0 else "warning",
                anchor=f"{who}:{day}",
                fired_at=_end_of(date.fromisoformat(day), cal),
                recipients=_recipients(agency),
                replayed=replayed,
                params={
                    "rule": "brief-8.13",
                    "window_days": config.harassment_window_days,
                    "day": day,
                    "feedback": row[0],
                    "negative": row[1],
                    "complaints": row[2],
                    "rate": round(rate, 4),
                    "peers": len(rated),
                    "peers_median": round(median, 4),
                    "peers_mad": round(mad, 4),
                    "k": config.harassment_k,
                    "limit": round(limit, 4),
                },
                official_id=who,
                agency=agency,
            )
        )
    return out
