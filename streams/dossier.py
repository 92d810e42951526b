"""The per-dossier stream processor: events in, state change and outputs out.

One state per dossier (a JSON dict, so a faust changelog table or a DuckDB row
keeps it as is), keyed by dossier id, so it runs on any partition of
``dossier.events``:

* ``f``: the projection's fact sheet (:func:`projections.state.evolve_into`): the
  deadlines, classes and working time all come from :func:`projections.state.view`
  over it, the one definition of a deadline;
* ``s``: the signal detectors' scratch (:mod:`streams.signals`);
* ``a``: the deadline alerts already fired, ``p``: those still pending (instant, level);
* ``m``: what this dossier currently adds to the open counts of the metrics;
* ``t``: the earliest pending timer, or None.

:meth:`DossierProcessor.apply` first fires the dossier's timers that fall before
the event's business time (what the watermark would have fired had it got there
first), then folds the event. :meth:`DossierProcessor.fire` fires the timers the
watermark has passed. Every output depends only on the dossier's events and the
instants of its timers, never on when a runner got to them, so a replay, an
embedded run and several Kafka workers produce the same outputs.

Outputs are :class:`Emit` values: rows (``signal``, ``alert``) and facts routed by
key to the keyed stage (:mod:`streams.aggregates`): metric deltas keyed by scope,
applicant and official facts.

Pure: standard library and the ledger's and projections' pure modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from ledger.domain.deadlines import overdue_from
from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from ledger.domain.working_calendar import BusinessCalendar
from projections import state as dossier_state
from streams.config import StreamConfig
from streams.outputs import alert
from streams.signals import Detectors

State = dict[str, Any]

# Events after which the deadlines or the end may have changed (a hand-over moves
# only the holder: see ``_handed_over``).
_DEADLINE_EVENTS = frozenset(
    {
        "DossierReceived",
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


class NoState(ValueError):
    """An event of a dossier the processor holds no state for (and not its receipt)."""


@dataclass(frozen=True, slots=True)
class Emit:
    """One output: a row for a table/topic, or a fact for the keyed stage.

    ``kind``: ``signal`` | ``alert`` (rows), ``metric`` | ``fact`` (routed by ``key``).
    """

    kind: str
    key: str
    value: dict[str, Any]


@lru_cache(maxsize=1 << 16)
def _instant(text: str) -> datetime:
    """A timer's instant (its text recurs: many dossiers share a due instant)."""
    return datetime.fromisoformat(text)


def metric_key(scope: str, key: str) -> str:
    return f"{scope}:{key}"


class _Views:
    """``view(facts, rules, now)``, memoised per instant for one step."""

    __slots__ = ("facts", "rules", "_cache")

    def __init__(self, facts: dict[str, Any], rules: RuleBook) -> None:
        self.facts = facts
        self.rules = rules
        self._cache: dict[datetime, dict[str, Any]] = {}

    def __call__(self, now: datetime) -> dict[str, Any]:
        v = self._cache.get(now)
        if v is None:
            v = self._cache[now] = dossier_state.view(self.facts, self.rules, now)
        return v


class DossierProcessor:
    """Deadline alerts, metric deltas and signals of one dossier at a time."""

    def __init__(
        self,
        rules: RuleBook,
        config: StreamConfig | None = None,
        detectors: Detectors | None = None,
    ) -> None:
        self.rules = rules
        self.config = config or StreamConfig()
        self.detectors = detectors or Detectors(rules, None, self.config.signals)

    # --- the two entry points -------------------------------------------------

    def apply(
        self, st: State | None, rec: Recorded, reference: datetime
    ) -> tuple[State, list[Emit]]:
        """Fold one event; ``reference`` is the instant alerts are judged ``replayed`` against."""
        env = rec.envelope
        at = datetime.fromisoformat(env["occurred_at"])
        out: list[Emit] = []
        if st is None:
            if env["type"] != "DossierReceived":
                raise NoState(
                    f"dossier {env['dossier_id']}: {env['type']} at position {rec.position} "
                    "with no state: before its receipt, or after its state was dropped "
                    "(finished longer ago than the retention)"
                )
            st = {"f": {}, "s": {}, "a": [], "p": [], "m": None, "t": None}
        elif st["f"] and st["f"]["last_position"] >= rec.position:
            return st, []  # redelivered: already applied
        elif st["t"] is not None and datetime.fromisoformat(st["t"]) < at:
            out.extend(self._fire(st, at, reference, strict=True))
        facts = dossier_state.evolve_into(st["f"], rec.position, env)
        views = _Views(facts, self.rules)
        etype = env["type"]
        if etype == "DossierReceived":
            out.extend(self._received(facts, rec))
        sigs, routed = self.detectors.on_event(st["s"], facts, rec, views)
        out.extend(Emit("signal", "", s) for s in sigs)
        out.extend(Emit("fact", k, v) for k, v in routed)
        if etype in _DEADLINE_EVENTS:
            out.extend(self._reassess(st, views, at, reference))
        elif etype in ("HandedOver", "TransferredToAgency") and st["m"] is not None:
            m = st["m"]
            cal = dossier_state.calendar(self.rules, facts)
            out.extend(self._move_open(st, facts, m["c"], facts["holder"], at, cal, m["od"]))
        self._schedule(st)
        return st, out

    def fire(self, st: State, watermark: datetime, reference: datetime) -> list[Emit]:
        """Fire every timer of the dossier at or before the watermark."""
        if st["t"] is None or datetime.fromisoformat(st["t"]) > watermark:
            return []
        return self._fire(st, watermark, reference, strict=False)

    # --- timers ----------------------------------------------------------------

    def _fire(self, st: State, upto: datetime, reference: datetime, *, strict: bool) -> list[Emit]:
        out: list[Emit] = []
        facts = st["f"]
        views = _Views(facts, self.rules)
        done: set[tuple[datetime, str, str]] = set()
        while True:
            due = self._due_timers(st, done)
            if not due:
                break
            at, what, tag = due
            if at > upto or (strict and at == upto):
                break
            done.add(due)
            if what == "level":
                out.extend(self._fire_level(st, views, tag, at, reference))
            elif what == "overdue":
                out.extend(self._reassess(st, views, at, reference))
            else:
                st["d"] = [d for d in st.get("d") or [] if d != [at.isoformat(), tag]]
                sigs, routed = self.detectors.on_timer(st["s"], facts, tag, at, views)
                out.extend(Emit("signal", "", s) for s in sigs)
                out.extend(Emit("fact", k, v) for k, v in routed)
            self._schedule(st)
        return out

    def _due_timers(
        self,
        st: State,
        done: set[tuple[datetime, str, str]] = frozenset(),  # type: ignore[assignment]
    ) -> tuple[datetime, str, str] | None:
        """The earliest pending timer not in ``done``: (instant, what, tag)."""
        fromiso = _instant
        candidates = [(fromiso(iso), "level", level) for iso, level in st["p"]]
        m = st["m"]
        if m is not None and m.get("od") is not None:
            candidates.append((fromiso(m["od"]), "overdue", ""))
        candidates.extend((fromiso(iso), "detector", tag) for iso, tag in st.get("d") or [])
        pending = [c for c in candidates if c not in done]
        return min(pending) if pending else None

    def _schedule(self, st: State) -> None:
        st["d"] = [[t.isoformat(), tag] for t, tag in self.detectors.timers(st["s"], st["f"])]
        best = self._due_timers(st)
        st["t"] = None if best is None else best[0].isoformat()

    # --- deadlines and open counts ---------------------------------------------

    def _reassess(self, st: State, views: _Views, at: datetime, reference: datetime) -> list[Emit]:
        """Recompute the pending alert levels and the open-count contribution at ``at``."""
        facts = st["f"]
        v = views(at)
        out: list[Emit] = []
        rs = dossier_state.rule_set(self.rules, facts)
        cal = BusinessCalendar.for_rules(rs, facts["agency"])
        ended = dossier_state.end_of(facts)
        if ended is not None and ended <= at:
            st["p"] = []
            out.extend(self._resolved(st, v, ended, cal))
            if st.get("e") is None and not v["open"]:
                # when the state may be dropped: runners drop it once the watermark of the
                # *events* passes this, never one pushed by --now, a tick or the wall clock
                # (a backlog still to be read could hold events of the dossier)
                st["e"] = (at + self.config.retention).isoformat()
            return out
        running = (
            not (v["awaiting_supplement"] and v["supplement_mode"] == "restart")
            and not v["clock_paused"]
        )
        # open-count contribution: within deadline or overdue, held by the holder
        cls = "overdue" if v["on_time"] == "OVERDUE" else "within"
        od = None
        if cls == "within" and running:
            od = overdue_from(
                datetime.fromisoformat(v["original_due_at"]), rs.granularity, cal.tz
            ).isoformat()
        out.extend(self._move_open(st, facts, cls, v["holder"], at, cal, od))
        # pending deadline alerts, against the appointment the desk must now meet
        st["p"] = []
        if running:
            due = datetime.fromisoformat(v["current_due_at"])
            used = timedelta(seconds=v["working_used_s"])
            left = cal.working_time(at, due) if due > at else timedelta(0)
            total = used + left
            fired = {tuple(x) for x in st["a"]}
            ever = {x[1] for x in st["a"]}
            for level in self.config.levels:
                if (v["current_due_at"], level.name) in fired:
                    continue
                remaining = total * level.share - used
                if remaining > timedelta(0):
                    when = cal.add_working_time(at, remaining)
                elif level.name in ever and level.share < 1.0:
                    continue  # passed already for an earlier deadline: not again
                else:
                    when = at
                if level.share >= 1.0:
                    when = max(when, due)
                st["p"].append([when.isoformat(), level.name])
        return out

    def _fire_level(
        self, st: State, views: _Views, level_name: str, at: datetime, reference: datetime
    ) -> list[Emit]:
        facts = st["f"]
        v = views(at)
        st["p"] = [p for p in st["p"] if p[1] != level_name]
        due_at = v["current_due_at"]
        st["a"].append([due_at, level_name])
        level = next(lv for lv in self.config.levels if lv.name == level_name)
        holder, unit = v["holder"], v["holder_agency"] or facts["agency"]
        recipients = []
        for role in level.recipients:
            if role == "official" and holder:
                recipients.append(f"official:{holder}")
            elif role == "head":
                recipients.append(f"head:{unit}")
            elif role == "inspector":
                recipients.append(f"inspector:{facts['agency']}")
        row = alert(
            "deadline",
            level_name,
            anchor=due_at,
            fired_at=at.isoformat(),
            recipients=recipients,
            replayed=at < reference - self.config.replay_horizon,
            params={
                "share": level.share,
                "working_used_s": v["working_used_s"],
                "original_due_at": v["original_due_at"],
                "step": v["step"],
            },
            dossier_id=facts["dossier_id"],
            official_id=holder,
            agency=facts["agency"],
            procedure_code=facts["procedure_code"],
            due_at=due_at,
        )
        return [Emit("alert", "", row)]

    def _scopes(
        self, facts: dict[str, Any], official: str | None
    ) -> list[tuple[str, str, str | None]]:
        agency = facts["agency"]
        out = [("agency", agency, agency), ("procedure", facts["procedure_code"], None)]
        if official:
            out.append(("official", official, agency))
        return out

    def _delta(
        self, facts: dict[str, Any], official: str | None, day: str, field: str, n: int
    ) -> list[Emit]:
        return [
            Emit(
                "metric",
                metric_key(scope, key),
                {
                    "scope": scope,
                    "key": key,
                    "agency": agency,
                    "day": day,
                    "field": field,
                    "n": n,
                    "pos": facts["last_position"],  # one event's deltas count once as late
                },
            )
            for scope, key, agency in self._scopes(facts, official)
        ]

    def _received(self, facts: dict[str, Any], rec: Recorded) -> list[Emit]:
        cal = dossier_state.calendar(self.rules, facts)
        day = datetime.fromisoformat(facts["received_at"]).astimezone(cal.tz).date().isoformat()
        return self._delta(facts, rec.envelope["actor"]["id"], day, "received", 1)

    def _move_open(
        self,
        st: State,
        facts: dict[str, Any],
        cls: str | None,
        holder: str | None,
        at: datetime,
        cal: BusinessCalendar,
        od: str | None,
    ) -> list[Emit]:
        """Move this dossier's +1 in the open counts from what it was to (cls, holder)."""
        old = st["m"] or {}
        st["m"] = None if cls is None else {"c": cls, "h": holder, "od": od}
        if old.get("c") == cls and old.get("h") == holder:
            return []
        day = at.astimezone(cal.tz).date().isoformat()
        out: list[Emit] = []
        if old.get("c"):
            out += self._delta_scoped(facts, old["c"], old.get("h"), day, -1, old.get("c") != cls)
        if cls:
            out += self._delta_scoped(facts, cls, holder, day, 1, old.get("c") != cls)
        return out

    def _delta_scoped(
        self,
        facts: dict[str, Any],
        cls: str,
        holder: str | None,
        day: str,
        n: int,
        all_scopes: bool,
    ) -> list[Emit]:
        field = "open_within" if cls == "within" else "open_overdue"
        rows = self._delta(facts, holder, day, field, n)
        return rows if all_scopes else [e for e in rows if e.value["scope"] == "official"]

    def _resolved(
        self, st: State, v: dict[str, Any], ended: datetime, cal: BusinessCalendar
    ) -> list[Emit]:
        facts = st["f"]
        out = self._move_open(st, facts, None, None, ended, cal, None)
        if st.get("r"):
            return out
        st["r"] = v["on_time"]
        field = {"EARLY": "resolved_early", "ON_TIME": "resolved_on_time", "LATE": "resolved_late"}
        day = ended.astimezone(cal.tz).date().isoformat()
        out += self._delta(facts, handler(facts), day, field[v["on_time"]], 1)
        return out


def handler(facts: dict[str, Any]) -> str | None:
    """The handling official a finished dossier is credited to: the first official it
    was handed to (the appraiser), else the receiving official."""
    for h in facts.get("handovers") or ():
        if h.get("to_official"):
            return h["to_official"]
    return facts.get("holder")
