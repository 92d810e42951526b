"""The loader: a page of ledger records into the analysts' tables, in the caller's transaction.

``Loader(con, rules).apply(records)`` writes ``events``, ``dossiers``,
``handovers``, ``dossier_period_ends`` and ``dossier_facts`` for one page of the
log on the given DuckDB connection and never commits: ``dossier sink`` and the
embedded ``dossier process`` each wrap it in their own transaction together with
their checkpoint. It is idempotent by ledger position: an event whose position
is not above the last one folded for its dossier is skipped, and ``events`` gets
exactly the events folded, so a replayed page after a crash changes nothing.

Deadlines are never computed here: every deadline, end and class comes from
:func:`projections.state.view` (the rule set's supplement mode for the legal
figures, and the same rule set in ``pause`` mode for the 766 index: the brief's
"keep both clocks").

"Open within deadline / overdue at the end of the period" needs each dossier's
state at each month end. The loader keeps a watermark (the latest business
time it has seen, in ledger order); when the watermark passes the end of a month
it stores ``view(facts, rules, now=<last instant of that month>)`` for every
dossier open at that instant (``dossier_period_ends``). An event that arrives
later than the watermark for a month already closed recomputes that dossier's
rows for the months it falls in (when the dossier has no event after that month
end). Memory stays bounded: fact sheets live in ``dossier_facts`` and only an LRU
cache of them is kept in memory.

If the caller rolls its transaction back after ``apply`` returned, the next
``apply`` notices (a token written with each page is not the one it left) and
drops its cache; ``apply`` also resets itself when it raises.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from analytics.connection import replace_rows
from analytics.rows import (
    DOSSIER_SELECT,
    EVENT_INSERT,
    HANDOVER_INSERT,
    PERIOD_SELECT,
    arrow,
    columns,
    dossier_rows,
    event_batch,
)
from analytics.schema import ensure_schema
from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from projections.state import Facts, end_of, evolve_into, view

if TYPE_CHECKING:
    import duckdb

_ONE_US = timedelta(microseconds=1)
_CHUNK = 20_000


def pause_book(rules: RuleBook) -> RuleBook:
    """``rules`` with every rule set in the 766 ``pause`` mode (ids kept for lookups).

    The copies get their own ids (``<id>#766``) so the clock's calendar cache keeps
    one calendar per copy instead of swapping between equal-looking rule sets.
    """
    copies = {r.id: replace(r, id=f"{r.id}#766", supplement_mode="pause") for r in rules.rule_sets}
    book = RuleBook(tuple(copies.values()))
    object.__setattr__(book, "_by_id", {**copies, **{c.id: c for c in copies.values()}})
    return book


def month_start(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def month_end_instant(first_day: date, tz: ZoneInfo) -> datetime:
    """The last instant of the month beginning ``first_day`` (local), where reports stand."""
    return datetime.combine(next_month(first_day), datetime.min.time(), tz) - _ONE_US


class Loader:
    """Writes the analysts' tables for pages of ledger records (see the module docstring)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, rules: RuleBook, *, cache_size: int = 10_000
    ) -> None:
        self.con = con
        self.rules = rules
        self.rules_766 = pause_book(rules)
        self.tz = ZoneInfo(rules.latest.timezone)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Facts] = OrderedDict()
        self._watermark: datetime | None = None
        self._state_loaded = False
        self._waiting: dict[str, Facts] = {}
        self._generation: str | None = None
        ensure_schema(con)

    def reset(self) -> None:
        """Forget what is held in memory (after the caller's transaction rolled back)."""
        self._cache.clear()
        self._state_loaded = False
        self._watermark = None
        self._waiting = {}
        self._generation = None

    @property
    def watermark(self) -> datetime | None:
        self._load_state()
        return self._watermark

    def apply(self, records: Iterable[Recorded]) -> int:
        """Write one page of records; return how many events were new. No commit."""
        try:
            return self._apply(records)
        except BaseException:
            self.reset()
            raise

    # --- the page ------------------------------------------------------------

    def _apply(self, records: Iterable[Recorded]) -> int:
        seen: set[int] = set()
        recs = []
        for r in records:
            if r.position not in seen:
                seen.add(r.position)
                recs.append(r)
        if not recs:
            return 0
        recs.sort(key=lambda r: r.position)
        self._load_state()
        facts = self._facts({r.envelope["dossier_id"] for r in recs})
        new: list[Recorded] = []
        touched: dict[str, Facts] = {}
        periods: dict[tuple[str, date], dict[str, Any] | None] = {}
        late: dict[str, date] = {}
        wm = self._watermark
        # The running month of the watermark as instants: the two comparisons per event
        # below need no time-zone conversion.
        month_from = month_until = None
        if wm is not None:
            month_from, month_until = self._month_bounds(wm)
        for rec in recs:
            env = rec.envelope
            did = env["dossier_id"]
            f = facts.get(did)
            if f is None:
                f = facts[did] = {}
            elif rec.position <= f["last_position"]:
                continue  # already folded: a replayed record
            occ = datetime.fromisoformat(env["occurred_at"])
            if wm is None:
                wm = occ
                month_from, month_until = self._month_bounds(wm)
            elif occ > wm:
                if occ >= month_until:
                    first = month_start(wm.astimezone(self.tz).date())
                    upto = month_start(occ.astimezone(self.tz).date())
                    while first < upto:  # the watermark passes the end of month ``first``
                        self._close_month(first, facts, periods)
                        first = next_month(first)
                    month_from, month_until = self._month_bounds(occ)
                wm = occ
            elif occ < month_from:  # before a month already closed
                occ_month = month_start(occ.astimezone(self.tz).date())
                late[did] = min(late.get(did, occ_month), occ_month)
            evolve_into(f, rec.position, env)
            new.append(rec)
            if env["type"] == "DossierReceived":
                applicant = env["data"].get("applicant") or {}
                f["applicant"] = applicant.get("pseudonym")
            touched[did] = f
        if late:
            self._late(late, facts, wm, periods)
        if wm is not None:
            self._open_month(wm, touched, periods)
        self._watermark = wm
        inserted = self._insert_events(new) if new else 0
        self._write(touched, periods, recs[-1].position)
        for did, f in touched.items():
            self._remember(did, f)
        return inserted

    def _month_bounds(self, instant: datetime) -> tuple[datetime, datetime]:
        """The first instant of ``instant``'s local month and of the next one."""
        first = month_start(instant.astimezone(self.tz).date())
        start = datetime.combine(first, datetime.min.time(), self.tz)
        return start, datetime.combine(next_month(first), datetime.min.time(), self.tz)

    # --- state and facts --------------------------------------------------------

    def _load_state(self) -> None:
        """Read the watermark, and drop the cache when the file is not where this loader
        left it: each page writes a new ``generation`` token, so a transaction the caller
        rolled back after ``apply`` (or another writer since) shows as a different token."""
        rows = self.con.execute(
            "SELECT key, value FROM analytics_state WHERE key IN ('watermark', 'generation')"
        ).fetchall()  # fetchall: a half-read result would block the caller's connection
        state = dict(rows)
        if self._state_loaded and state.get("generation") == self._generation:
            return
        self.reset()
        wm = state.get("watermark")
        self._watermark = datetime.fromisoformat(wm) if wm else None
        self._generation = state.get("generation")
        self._state_loaded = True

    def _remember(self, did: str, f: Facts) -> None:
        cache = self._cache
        cache[did] = f
        cache.move_to_end(did)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    def _facts(self, ids: Iterable[str]) -> dict[str, Facts]:
        """The fact sheets of ``ids`` (from the cache, else ``dossier_facts``)."""
        out: dict[str, Facts] = {}
        missing = []
        for did in ids:
            f = self._cache.get(did)
            if f is None:
                missing.append(did)
            else:
                out[did] = f
        for chunk in _chunks(missing, _CHUNK):
            import pyarrow as pa

            self.con.register("loader_ids", pa.table({"dossier_id": pa.array(chunk, pa.string())}))
            rows = self.con.execute(
                "SELECT f.dossier_id, f.facts FROM dossier_facts f "
                "JOIN loader_ids USING (dossier_id)"
            ).fetchall()
            self.con.unregister("loader_ids")
            for did, text in rows:
                out[did] = orjson.loads(text)
        return out

    # --- month ends -------------------------------------------------------------

    def _view_766(self, f: Facts, v: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """``view`` on the 766 clock; the supplement mode only matters once a supplement
        was requested or the clock paused, so otherwise it is ``v`` itself (measured:
        ~40% of the loader's view calls saved)."""
        if not f["supplements"] and not f["pauses"] and v["supplement_mode"] == "restart":
            return v
        return view(f, self.rules_766, now)

    def _period_row(self, f: Facts, month: date, now: datetime) -> dict[str, Any]:
        v = view(f, self.rules, now)
        v7 = self._view_766(f, v, now)
        return {
            "dossier_id": f["dossier_id"],
            "month_end": (next_month(month) - timedelta(days=1)).isoformat(),
            "on_time": v["on_time"],
            "on_time_766": v7["on_time"],
            "original_due_at": v["original_due_at"],
            "awaiting_supplement": v["awaiting_supplement"],
        }

    def _close_month(
        self,
        month: date,
        facts: dict[str, Facts],
        periods: dict[tuple[str, date], dict[str, Any] | None],
    ) -> None:
        """Store the state at the end of ``month`` of every dossier open then."""
        now = month_end_instant(month, self.tz)
        rows = self.con.execute("SELECT dossier_id FROM dossiers WHERE ended_at IS NULL").fetchall()
        others = [d for (d,) in rows if d not in facts]
        for did, f in facts.items():
            self._period_at(did, f, month, now, periods)
        for chunk in _chunks(others, _CHUNK):
            for did, f in self._facts(chunk).items():
                self._period_at(did, f, month, now, periods)

    def _period_at(
        self,
        did: str,
        f: Facts,
        month: date,
        now: datetime,
        periods: dict[tuple[str, date], dict[str, Any] | None],
    ) -> None:
        if not f or end_of(f) is not None or datetime.fromisoformat(f["received_at"]) > now:
            # Not open at the month end: drop a row written while the month was running.
            periods.setdefault((did, month), None)
            return
        periods[(did, month)] = self._period_row(f, month, now)
        if _waiting(f):
            self._waiting[did] = f

    def _open_month(
        self,
        wm: datetime,
        touched: dict[str, Facts],
        periods: dict[tuple[str, date], dict[str, Any] | None],
    ) -> None:
        """Rows for the month still running, for dossiers with a clock stopped by an open
        wait (their class at the month end depends on how long the wait lasts, which
        SQL cannot compare); every other open dossier's class there is a comparison of
        its stored deadline with the month's last instant (see ``analytics.views``)."""
        month = month_start(wm.astimezone(self.tz).date())
        now = month_end_instant(month, self.tz)
        for did, f in {**self._waiting, **touched}.items():
            if f and end_of(f) is None and _waiting(f):
                periods[(did, month)] = self._period_row(f, month, now)
            elif (did, month) not in periods:
                periods[(did, month)] = None
        self._waiting = {}

    def _late(
        self,
        late: dict[str, date],
        facts: dict[str, Facts],
        wm: datetime,
        periods: dict[tuple[str, date], dict[str, Any] | None],
    ) -> None:
        """Recompute the month ends a late event falls before (closed months only)."""
        open_month = month_start(wm.astimezone(self.tz).date())
        for did, month in late.items():
            f = facts[did]
            last = datetime.fromisoformat(f["last_occurred_at"])
            while month < open_month:
                now = month_end_instant(month, self.tz)
                if last <= now:  # the fold holds exactly the events up to ``now``
                    end = end_of(f)
                    received = datetime.fromisoformat(f["received_at"])
                    if end is None and received <= now:
                        periods[(did, month)] = self._period_row(f, month, now)
                    else:
                        periods[(did, month)] = None
                month = next_month(month)

    # --- writing ------------------------------------------------------------------

    def _insert_events(self, recs: list[Recorded]) -> int:
        self.con.register("loader_events", event_batch(recs))
        try:
            ((n,),) = self.con.execute(EVENT_INSERT).fetchall()
        finally:
            self.con.unregister("loader_events")
        return int(n)

    def _dossier_row(self, f: Facts) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        v = view(f, self.rules)
        return dossier_rows(f, self.rules, v, self._view_766(f, v))

    def _write(
        self,
        touched: dict[str, Facts],
        periods: dict[tuple[str, date], dict[str, Any] | None],
        position: int,
    ) -> None:
        con = self.con
        dossiers: list[dict[str, Any]] = []
        handovers: list[dict[str, Any]] = []
        for f in touched.values():
            row, hrows = self._dossier_row(f)
            dossiers.append(row)
            handovers.extend(hrows)
        if touched:
            ids = list(touched)
            facts_batch = arrow(
                {"dossier_id": ids, "facts": [orjson.dumps(touched[d]).decode() for d in ids]}
            )
            con.register("loader_facts", facts_batch)
            replace_rows(con, "dossier_facts", "SELECT * FROM loader_facts", ["dossier_id"])
            con.unregister("loader_facts")
            con.register("loader_dossiers", arrow(columns(dossiers)))
            replace_rows(con, "dossiers", DOSSIER_SELECT, ["dossier_id"])
            con.unregister("loader_dossiers")
            con.register("loader_ids", arrow({"dossier_id": ids}))
            con.execute(
                "DELETE FROM handovers WHERE dossier_id IN (SELECT dossier_id FROM loader_ids)"
            )
            con.unregister("loader_ids")
            if handovers:
                con.register("loader_handovers", arrow(columns(handovers)))
                con.execute(HANDOVER_INSERT)
                con.unregister("loader_handovers")
        gone = [(d, m) for (d, m), r in periods.items() if r is None]
        kept = [r for r in periods.values() if r is not None]
        if gone:
            con.register(
                "loader_gone",
                arrow(
                    {
                        "dossier_id": [d for d, _ in gone],
                        "month_end": [
                            (next_month(m) - timedelta(days=1)).isoformat() for _, m in gone
                        ],
                    }
                ),
            )
            con.execute(
                "DELETE FROM dossier_period_ends USING loader_gone g "
                "WHERE dossier_period_ends.dossier_id = g.dossier_id "
                "AND dossier_period_ends.month_end = CAST(g.month_end AS DATE)"
            )
            con.unregister("loader_gone")
        if kept:
            con.register("loader_periods", arrow(columns(kept)))
            replace_rows(con, "dossier_period_ends", PERIOD_SELECT, ["dossier_id", "month_end"])
            con.unregister("loader_periods")
        self._generation = uuid.uuid4().hex
        state = [("position", str(position)), ("generation", self._generation)]
        if self._watermark is not None:
            local = self._watermark.astimezone(self.tz).replace(tzinfo=None)
            state += [("watermark", self._watermark.isoformat())]
            state += [("watermark_local", local.isoformat()), ("timezone", self.tz.key)]
        con.executemany("INSERT OR REPLACE INTO analytics_state VALUES (?, ?)", state)


def _waiting(f: Facts) -> bool:
    """Whether a supplement wait or a clock pause is open (the clock stands still)."""
    return any(e[1] is None for e in f["supplements"]) or any(p[1] is None for p in f["pauses"])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
