"""What the web pages show, read from the ledger, the read models and DuckDB: never written.

* A dossier page reads the ledger (the source of truth): its events, its chain
  verified, its state, audit trail and control sheet from the same pure folds
  the ``history`` and ``control-sheet`` commands use. Its deadline state is
  judged at the stream processors' watermark (else the latest business time in
  the read models), never at the wall clock.
* Dashboards read the read models (``readmodels.sqlite3``, opened read-only)
  and the stream processors' tables in ``analytics.duckdb`` (``signals``,
  ``alerts``, ``metrics_daily``): its published snapshot
  (``analytics.snapshot``) when the writer publishes one, else the file itself,
  read-only (a writer holding it is waited for briefly).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import orjson

from analytics.connection import database_path
from analytics.reader import Analytics, AnalyticsBusy
from ledger.aggregate import DossierNotFound
from ledger.audit import verify
from ledger.bootstrap import open_ledger
from ledger.domain.watermark import DEFAULT_LATENESS, Watermark
from ledger.settings import Settings
from projections import audit_trail, control_sheet
from projections import state as dossier_state
from projections.store import open_store
from projections.workload import Held, is_overdue
from streams.config import config_for

ALERT_LEVELS = ("half", "three_quarters", "due", "warning", "severe")
DEADLINE_STATES = ("within_deadline", "overdue", "awaiting_supplement", "resolved_not_returned")


class NoLedger(RuntimeError):
    """The data directory holds no ledger yet."""


class Site:
    """Everything the pages read, behind one lock per store (the ledger's connection
    is not shared between threads)."""

    def __init__(self, settings: Settings) -> None:

        if not settings.uses_postgres and not settings.sqlite_path.exists():
            raise NoLedger(
                f"no ledger in {settings.data_dir} (run `dossier demo` or `dossier ingest` first)"
            )
        self.settings = settings
        self.ledger = open_ledger(settings)
        self.rules = self.ledger.rules
        self.analytics = Analytics(database_path(settings))
        self._ledger_lock = threading.Lock()
        self._rm_lock = threading.Lock()
        self._rm: sqlite3.Connection | None = None
        self._pg_rm: Any = None
        self._cache: dict[Any, tuple[Any, Any]] = {}
        self._verifier = ThreadPoolExecutor(2, thread_name_prefix="verify")

    def warm(self) -> None:
        """Do once, before the first visitor, what the first page would pay for: the
        calendars and holiday tables, the snapshot opened, the dashboard computed."""
        q = self._read_models()
        rows = q("SELECT MIN(dossier_id) FROM rm_dossiers", ()) if q is not None else []
        if rows and rows[0][0]:
            self.dossier(rows[0][0])
        self.dashboard(None)

    # --- read models -----------------------------------------------------------------

    def _read_models(self) -> Callable[[str, Sequence[Any]], list[tuple[Any, ...]]] | None:
        """A query function on the read models, read-only; None when there are none yet."""
        if self.settings.uses_postgres:
            if self._pg_rm is None:
                self._pg_rm = open_store(self.settings)

            def pg(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
                with self._pg_rm.transaction() as c:
                    c.execute("SET TRANSACTION READ ONLY")
                    c.execute(sql.replace("?", "%s"), list(params))
                    return c.fetchall()

            return pg
        path = self.settings.data_dir / "readmodels.sqlite3"
        if self._rm is None:
            if not path.exists():
                return None
            self._rm = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=10
            )

        def query(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            with self._rm_lock:
                try:
                    return self._rm.execute(sql, list(params)).fetchall()  # type: ignore[union-attr]
                except sqlite3.OperationalError as e:
                    if "no such table" in str(e):
                        return []
                    raise

        return query

    def read_model_position(self) -> int:
        q = self._read_models()
        if q is None:
            return 0
        rows = q("SELECT position FROM rm_tracking WHERE name = 'store'", ())
        return int(rows[0][0]) if rows else 0

    def _cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """A value computed once per read-model position (the dashboards change with it)."""
        pos = self.read_model_position()
        hit = self._cache.get(key)
        if hit is not None and hit[0] == pos:
            return hit[1]
        value = compute()
        self._cache[key] = (pos, value)
        return value

    def now(self) -> datetime | None:
        """The stream processors' watermark (their checkpoint in ``analytics.duckdb``) once
        they have run; else the watermark of the latest business time in the read models,
        else of the last ledger event's; None on an empty ledger. Never the wall clock."""
        watermark = self.watermark()
        return watermark if watermark is not None else self._cached("now", self._now)

    def watermark(self) -> datetime | None:
        """The furthest watermark the stream processors have checkpointed."""
        try:
            rows = self.analytics.rows(
                "SELECT watermark FROM stream_checkpoint WHERE watermark IS NOT NULL",
                (),
                needs="stream_checkpoint",
            )
        except AnalyticsBusy:
            return None
        marks = []
        for row in rows:
            obj = row["watermark"]
            obj = orjson.loads(obj) if isinstance(obj, str) else obj
            lateness = timedelta(seconds=obj.get("lateness_s", DEFAULT_LATENESS.total_seconds()))
            current = Watermark.from_json(obj, lateness).current
            if current is not None:
                marks.append(current)
        return max(marks, default=None)

    def _now(self) -> datetime | None:
        """The watermark of the latest business time known without the processors: the
        read models', else the last ledger event's, less the configured lateness."""
        latest: datetime | None = None
        q = self._read_models()
        if q is not None:
            rows = q("SELECT MAX(last_occurred_utc) FROM rm_dossiers", ())
            if rows and rows[0][0]:
                latest = datetime.fromisoformat(rows[0][0])
        if latest is None:
            with self._ledger_lock:
                last = self.ledger.max_position()
                recs = self.ledger.read(max(0, last - 1), 1) if last else []
            if recs:
                latest = datetime.fromisoformat(recs[0].envelope["occurred_at"])
        lateness = config_for(self.settings.data_dir).lateness
        return Watermark(lateness, latest).current

    def agencies(self) -> list[str]:
        def compute() -> list[str]:
            q = self._read_models()
            if q is None:
                return []
            return [r[0] for r in q("SELECT DISTINCT agency FROM rm_dossiers ORDER BY agency", ())]

        return self._cached("agencies", compute)

    def search(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        """Dossiers whose code starts with or contains ``text`` (read models)."""
        q = self._read_models()
        if q is None:
            return []
        like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = q(
            "SELECT dossier_id, status, agency, procedure_code, current_due_at, on_time "
            "FROM rm_dossiers WHERE dossier_id LIKE ? ESCAPE '\\' "
            "ORDER BY dossier_id LIMIT ?",
            (f"%{like}%", limit),
        )
        keys = ("dossier_id", "status", "agency", "procedure_code", "current_due_at", "on_time")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # --- one dossier (the ledger) ----------------------------------------------------

    def dossier(self, code: str) -> dict[str, Any] | None:
        """Timeline, control sheet, state at the stream's now and chain verification."""

        # The chain is verified on its own connection (``ledger.scan``), mostly inside
        # SQLite without the GIL, while this thread reads and folds the events.
        checked = self._verifier.submit(verify, self.ledger, code)
        try:
            with self._ledger_lock:
                records = self.ledger.events_of(code)
        except DossierNotFound:
            checked.cancel()
            if not checked.cancelled():
                checked.exception()  # wait for it: nothing left running behind the answer
            return None
        facts = dossier_state.fold(records)
        now = self.now()
        last = datetime.fromisoformat(facts["last_occurred_at"])
        if now is None or now < last:
            now = last  # a dossier newer than the read models: its own last event
        state = dossier_state.view(facts, self.rules, now)
        page = self._dossier_page(code, records, facts, state, now)
        problems = checked.result()
        page["chain"] = {
            "verified": not problems,
            "events": len(records),
            "problems": [str(p) for p in problems],
        }
        return page

    def _dossier_page(
        self, code: str, records: list[Any], facts: Any, state: dict[str, Any], now: datetime
    ) -> dict[str, Any]:

        return {
            "dossier_id": code,
            "now": now.isoformat(),
            "chain": None,  # set by the caller once verified
            "state": state,
            "deadline_state": deadline_state(state),
            "trail": audit_trail.rows(records, self.rules),
            "control_sheet": {
                "header": control_sheet.header(facts, self.rules),
                "rows": control_sheet.rows(facts, self.rules),
            },
            "alerts": self.analytics_rows(
                "SELECT * FROM alerts WHERE dossier_id = ? ORDER BY fired_at", (code,), "alerts"
            ),
            "signals": self.analytics_rows(
                "SELECT * FROM signals WHERE dossier_id = ? ORDER BY detected_at",
                (code,),
                "signals",
            ),
        }

    def analytics_rows(self, sql: str, params: Sequence[Any], table: str) -> list[dict[str, Any]]:
        try:
            return self.analytics.rows(sql, params, needs=table)
        except AnalyticsBusy:
            return []

    # --- dashboards --------------------------------------------------------------------

    def dashboard(self, agency: str | None = None) -> dict[str, Any]:
        return self._cached(("dashboard", agency), lambda: self._dashboard(agency))

    def _dashboard(self, agency: str | None) -> dict[str, Any]:
        now = self.now()
        return {
            "agency": agency,
            "now": None if now is None else now.isoformat(),
            "open_by_state": self.open_by_state(agency, now),
            "trend": self.trend(agency),
            "top_signals": self.top_signals(agency),
            "workload": self.workload(agency),
        }

    def open_by_state(self, agency: str | None, now: datetime | None) -> dict[str, int]:
        """Open dossiers by deadline state at ``now`` (``projections.workload.is_overdue``)."""

        counts = dict.fromkeys(DEADLINE_STATES, 0)
        q = self._read_models()
        if q is None or now is None:
            return counts
        where, params = ("AND agency = ?", (agency,)) if agency else ("", ())
        rows = q(
            "SELECT holder, holder_agency, status, original_due_at, rule_set, agency, "
            "awaiting_supplement, supplement_mode FROM rm_dossiers "
            f"WHERE status NOT IN ('RETURNED', 'WITHDRAWN') {where}",
            params,
        )
        for r in rows:
            h = Held(*r[:6], bool(r[6]), r[7])
            if h.status == "RESOLVED":
                counts["resolved_not_returned"] += 1
            elif h.awaiting_supplement:
                counts["awaiting_supplement"] += 1
            elif is_overdue(h, self.rules, now):
                counts["overdue"] += 1
            else:
                counts["within_deadline"] += 1
        return counts

    def trend(self, agency: str | None) -> list[dict[str, Any]]:
        """On-time rate per day (daily and rolling 30 days) from ``metrics_daily``."""
        where, params = ("AND key = ?", [agency]) if agency else ("", [])
        return self.analytics_rows(
            "SELECT day, "
            "SUM(resolved_early + resolved_on_time) FILTER (WHERE \"window\" = 'day') AS ok_day, "
            "SUM(resolved_early + resolved_on_time + resolved_late) "
            "  FILTER (WHERE \"window\" = 'day') AS resolved_day, "
            "SUM(resolved_early + resolved_on_time) FILTER (WHERE \"window\" = 'rolling_30d') "
            "  AS ok_30d, "
            "SUM(resolved_early + resolved_on_time + resolved_late) "
            "  FILTER (WHERE \"window\" = 'rolling_30d') AS resolved_30d, "
            "SUM(received) FILTER (WHERE \"window\" = 'day') AS received, "
            "bool_and(final) AS final "
            f"FROM metrics_daily WHERE scope = 'agency' {where} GROUP BY day ORDER BY day",
            params,
            "metrics_daily",
        )

    def top_signals(self, agency: str | None, limit: int = 10) -> dict[str, Any]:
        where, params = ("WHERE agency = ?", [agency]) if agency else ("", [])
        by_kind = self.analytics_rows(
            "SELECT kind, severity, COUNT(*) AS n FROM signals "
            f"{where} GROUP BY kind, severity ORDER BY n DESC, kind, severity",
            params,
            "signals",
        )
        officials = self.analytics_rows(
            "SELECT official_id, agency, COUNT(*) AS n, "
            "COUNT(*) FILTER (WHERE severity IN ('severe', 'critical')) AS severe "
            f"FROM signals {where} {'AND' if where else 'WHERE'} official_id IS NOT NULL "
            "GROUP BY official_id, agency ORDER BY severe DESC, n DESC, official_id LIMIT ?",
            [*params, limit],
            "signals",
        )
        return {"by_kind": by_kind, "officials": officials}

    def workload(self, agency: str | None, limit: int = 20) -> list[dict[str, Any]]:
        """Officials holding the most open dossiers (``rm_workload``)."""
        q = self._read_models()
        if q is None:
            return []
        where, params = ("WHERE agency = ?", (agency,)) if agency else ("", ())
        rows = q(
            "SELECT official, agency, open_held, overdue_held, as_of FROM rm_workload "
            f"{where} ORDER BY overdue_held DESC, open_held DESC, official LIMIT ?",
            (*params, limit),
        )
        keys = ("official", "agency", "open_held", "overdue_held", "as_of")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # --- alerts ---------------------------------------------------------------------

    def alerts(
        self,
        *,
        after: int | None = None,
        limit: int = 50,
        agency: str | None = None,
        level: str | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts with their ``seq`` (DuckDB rowid, growing as rows arrive): the newest
        ``limit`` first, or with ``after`` those that arrived after it, oldest first."""
        clauses, params = [], []
        if after is not None:
            clauses.append("rowid > ?")
            params.append(after)
        if agency:
            clauses.append("agency = ?")
            params.append(agency)
        if level:
            clauses.append("level = ?")
            params.append(level)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        order = "ASC" if after is not None else "DESC"
        return self.analytics.rows(
            f"SELECT rowid AS seq, * FROM alerts {where} ORDER BY rowid {order} LIMIT ?",
            [*params, limit],
            needs="alerts",
        )

    def last_alert_seq(self) -> int:
        rows = self.analytics.rows("SELECT MAX(rowid) AS seq FROM alerts", (), needs="alerts")
        return int(rows[0]["seq"]) if rows and rows[0]["seq"] is not None else 0

    def close(self) -> None:
        self._verifier.shutdown(wait=True)
        self.analytics.close()
        if self._rm is not None:
            self._rm.close()
            self._rm = None
        if self._pg_rm is not None:
            self._pg_rm.close()
            self._pg_rm = None


def deadline_state(state: dict[str, Any]) -> str:
    """One of :data:`DEADLINE_STATES` (or ``closed``) for a :func:`projections.state.view`."""
    if not state["open"]:
        return "closed"
    if state["status"] == "RESOLVED":
        return "resolved_not_returned"
    if state["awaiting_supplement"]:
        return "awaiting_supplement"
    return "overdue" if state["on_time"] == "OVERDUE" else "within_deadline"
