"""The keyed stage: facts routed by key into daily windows, applicant and official state.

The dossier processor emits facts keyed by what they are about; this stage keeps
one state per key (a JSON dict, like the dossier states), so it runs on any
partition of a topic keyed the same way:

* ``agency:<code>``, ``procedure:<code>``, ``official:<id>``: on-time metrics.
  Deltas (``received``, ``resolved_*``, ``open_*``) go into the local day they
  happened on. A day's window is *provisional* until the watermark passes its end
  plus the grace period, then *final*: its ``day`` and ``rolling_30d`` rows are
  emitted with ``final = true`` and the low-on-time-rate alert (brief §8.14) is
  judged. A delta for a day already final still moves the running open counts,
  and is counted in that day's ``late_events`` (its row is emitted again): late
  data is visible, never dropped and never silently rewriting a final figure.
* ``applicant:<pseudonym>``: :class:`streams.signals.ApplicantDetector`.
* ``officials``: :class:`streams.signals.OfficialAlerts`, told each final day.

Pure: standard library and the pure modules.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ledger.domain.rules import RuleBook
from streams.config import StreamConfig
from streams.dossier import Emit
from streams.outputs import alert
from streams.signals import ApplicantDetector, OfficialAlerts

State = dict[str, Any]

COUNTS = ("received", "resolved_early", "resolved_on_time", "resolved_late")
OPEN = ("open_within", "open_overdue")
OFFICIALS = "officials"


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNTS + OPEN, 0)


class Aggregates:
    """One keyed state at a time; the runner owns the states and the watermark."""

    def __init__(
        self,
        rules: RuleBook,
        config: StreamConfig | None = None,
        applicants: ApplicantDetector | None = None,
        officials: OfficialAlerts | None = None,
    ) -> None:
        self.rules = rules
        self.config = config or StreamConfig()
        self.tz = ZoneInfo(rules.rule_sets[-1].timezone)
        self.applicants = applicants or ApplicantDetector(self.config.signals)
        self.officials = officials or OfficialAlerts(rules, self.config.signals)

    # --- time ------------------------------------------------------------------

    def final_through(self, watermark: datetime | None) -> str | None:
        """The last local day whose window is final at ``watermark``."""
        if watermark is None:
            return None
        local = (watermark - self.config.grace).astimezone(self.tz)
        return (local.date() - timedelta(days=1)).isoformat()

    def day_end(self, day: str) -> datetime:
        d = date.fromisoformat(day) + timedelta(days=1)
        return datetime.combine(d, time(0), self.tz)

    # --- facts ------------------------------------------------------------------

    def apply(
        self, st: State | None, key: str, value: dict[str, Any], final: str | None
    ) -> tuple[State, list[Emit]]:
        """Fold one routed fact; ``final`` is the last final day (:meth:`final_through`)."""
        if key.startswith("applicant:"):
            st = st if st is not None else {}
            return st, [Emit("signal", "", s) for s in self.applicants.step(st, value)]
        if key == OFFICIALS:
            st = st if st is not None else {}
            self.officials.step(st, value)
            return st, []
        if st is None:
            st = {"base": dict.fromkeys(OPEN, 0), "days": {}, "final": None, "closed": []}
            st["agency"] = value.get("agency")
        day, fld, n = value["day"], value["field"], value["n"]
        if final is not None and day <= final:
            return st, self._late(key, st, day, fld, n, value.get("pos"))
        counts = st["days"].get(day)
        if counts is None:
            counts = st["days"][day] = _zero()
        counts[fld] += n
        dirty = st.get("dirty")  # the earliest day changed since the last provisional rows
        if dirty is not True and (not dirty or day < dirty):
            st["dirty"] = day
        return st, []

    def _late(self, key: str, st: State, day: str, fld: str, n: int, pos: int | None) -> list[Emit]:
        """A delta for a day already final: the final figures keep their counts, the
        running open counts still move, and the day's ``late_events`` counts the event
        (once, however many of its deltas come late)."""
        if fld in OPEN:
            st["base"][fld] += n
        seen = st.setdefault("late_seen", {})
        first = pos is None or seen.get(day) != pos
        seen[day] = pos
        for entry in st["closed"]:
            if entry[0] == day:
                entry[2] += first
                return [Emit("metric", key, self._row(key, st, entry, "day", True))]
        # a day that had no row (or left the rolling window): a row of its own
        entry = [day, _zero(), 1, [st["base"]["open_within"], st["base"]["open_overdue"]]]
        return [Emit("metric", key, self._row(key, st, entry, "day", True))]

    # --- windows --------------------------------------------------------------------

    def advance(self, key: str, st: State, final: str | None, reference: datetime) -> list[Emit]:
        """Finalize the key's days up to ``final``: their rows, and their alerts."""
        if final is None or key.startswith("applicant:"):
            return []
        if key == OFFICIALS:
            out: list[Emit] = []
            last = st.get("final_day")
            for day in _days_between(last, final):
                replayed = (
                    self.day_end(day) + self.config.grace < reference - self.config.replay_horizon
                )
                out.extend(
                    Emit("alert", "", a) for a in self.officials.on_day_final(st, day, replayed)
                )
            st["final_day"] = final
            return out
        last = st["final"]
        if last is not None and last >= final:
            return []
        pending = sorted(d for d in st["days"] if d <= final)
        if key.startswith("agency:") and (last is not None or pending):
            # an agency has a row for every day it has something open or going on
            after = last or (date.fromisoformat(pending[0]) - timedelta(days=1)).isoformat()
            days = _days_between(after, final)
        else:
            days = pending
        out = []
        horizon = self.config.rolling_days
        for day in days:
            counts = st["days"].pop(day, None)
            if counts is None:
                if not any(st["base"].values()):
                    continue
                counts = _zero()
            for f in OPEN:
                st["base"][f] += counts[f]
            entry = [
                day,
                {f: counts[f] for f in COUNTS},
                0,
                [st["base"]["open_within"], st["base"]["open_overdue"]],
            ]
            closed = st["closed"]
            closed.append(entry)
            since = (date.fromisoformat(day) - timedelta(days=horizon - 1)).isoformat()
            while closed and closed[0][0] < since:
                gone = closed.pop(0)
                st.get("late_seen", {}).pop(gone[0], None)
            out.append(Emit("metric", key, self._row(key, st, entry, "day", True)))
            rolling = self._row(key, st, entry, "rolling_30d", True)
            out.append(Emit("metric", key, rolling))
            out.extend(self._low_rate(key, st, rolling, reference))
        st["final"] = final
        return out

    @staticmethod
    def idle(key: str, st: State) -> bool:
        """Whether a closing day can mean nothing to the key until a new fact comes:
        no day pending and nothing open (the officials' state is never idle)."""
        if key == OFFICIALS or key.startswith("applicant:"):
            return key != OFFICIALS
        return not st["days"] and not any(st["base"].values())

    def provisional(self, key: str, st: State) -> list[Emit]:
        """Rows of the key's days not yet final, from the earliest day touched since the
        last call: a day's open counts and rolling totals depend on the days before it,
        never on those after, so the rows before it are as last sent. (Each pending day
        was once the day touched; a final row replaces them all at the day's close.)"""
        since = st.get("dirty")
        if key.startswith("applicant:") or key == OFFICIALS or not since:
            return []
        st["dirty"] = False
        out = []
        base = dict(st["base"])
        for day in sorted(st["days"]):
            counts = st["days"][day]
            for f in OPEN:
                base[f] += counts[f]
            if since is not True and day < since:  # True: a state saved before days were kept
                continue
            entry = [
                day,
                {f: counts[f] for f in COUNTS},
                0,
                [base["open_within"], base["open_overdue"]],
            ]
            out.append(Emit("metric", key, self._row(key, st, entry, "day", False)))
            out.append(Emit("metric", key, self._row(key, st, entry, "rolling_30d", False)))
        return out

    def _row(
        self, key: str, st: State, entry: list[Any], window: str, final: bool
    ) -> dict[str, Any]:
        """A ``metrics_daily`` row of the day ``entry`` = [day, counts, late, open at its end]."""
        scope, _, name = key.partition(":")
        day, counts, late, (open_within, open_overdue) = entry
        if window == "day":
            totals = counts
        else:  # the final days of the window before this one, then this one
            since = (
                date.fromisoformat(day) - timedelta(days=self.config.rolling_days - 1)
            ).isoformat()
            totals = dict(counts)
            for d, c, _late, _open in st["closed"]:
                if since <= d < day:
                    for f in COUNTS:
                        totals[f] += c[f]
            if not final:  # provisional: the other pending days up to this one
                for d, c in st["days"].items():
                    if d < day:
                        for f in COUNTS:
                            totals[f] += c[f]
        resolved = totals["resolved_early"] + totals["resolved_on_time"] + totals["resolved_late"]
        return {
            "day": day,
            "window": window,
            "scope": scope,
            "key": name,
            "agency": st.get("agency"),
            "received": totals["received"],
            "resolved_early": totals["resolved_early"],
            "resolved_on_time": totals["resolved_on_time"],
            "resolved_late": totals["resolved_late"],
            "open_within": open_within,
            "open_overdue": open_overdue,
            "on_time_rate": (
                None if resolved == 0 else (resolved - totals["resolved_late"]) / resolved
            ),
            "late_events": late,
            "final": final,
        }

    def _low_rate(
        self, key: str, st: State, row: dict[str, Any], reference: datetime
    ) -> list[Emit]:
        """Brief §8.14: a rolling on-time rate below the threshold, on enough dossiers.
        Fired when the rate falls below, re-armed when it recovers."""
        if row["scope"] not in ("agency", "procedure"):
            return []
        resolved = row["resolved_early"] + row["resolved_on_time"] + row["resolved_late"]
        rate = row["on_time_rate"]
        cfg = self.config
        if rate is None or resolved < cfg.low_rate_min_resolved:
            return []
        if rate >= cfg.low_rate_threshold:
            st["below"] = False
            return []
        if st.get("below"):
            return []
        st["below"] = True
        fired = self.day_end(row["day"]) + cfg.grace
        recipients = [f"head:{row['key']}"] if row["scope"] == "agency" else []
        recipients.append(f"inspector:{row['agency'] or row['key']}")
        return [
            Emit(
                "alert",
                "",
                alert(
                    "low_on_time_rate",
                    "warning",
                    anchor=row["day"],
                    fired_at=fired.isoformat(),
                    recipients=recipients,
                    replayed=fired < reference - cfg.replay_horizon,
                    params={
                        "scope": row["scope"],
                        "key": row["key"],
                        "window_days": cfg.rolling_days,
                        "on_time_rate": rate,
                        "threshold": cfg.low_rate_threshold,
                        "resolved": resolved,
                        "min_resolved": cfg.low_rate_min_resolved,
                    },
                    agency=row["agency"] if row["scope"] == "agency" else None,
                    procedure_code=row["key"] if row["scope"] == "procedure" else None,
                ),
            )
        ]


def _days_between(after: str | None, through: str) -> list[str]:
    """ISO days in (after, through]; just ``through`` when ``after`` is None."""
    end = date.fromisoformat(through)
    if after is None:
        return [through]
    d = date.fromisoformat(after) + timedelta(days=1)
    out = []
    while d <= end:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out
