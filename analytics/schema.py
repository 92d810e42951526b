"""The analysts' database: every table of ``analytics.duckdb`` and how it is created.

Tables written by the loader (:mod:`analytics.loader`), one transaction per page
of the log:

* ``events``: one row per ledger event, keyed by ``position``; the applicant
  block keeps only its pseudonym (the sealed part never reaches DuckDB).
* ``dossiers``: one row per dossier, derived by :func:`projections.state.view`
  (the one definition of deadlines) after the dossier's latest event.
* ``handovers``: one row per hand-over, from :func:`projections.control_sheet.rows`.
* ``dossier_period_ends``: each dossier's state at each month end it was open
  at, derived by ``view(facts, rules, now=<last instant of the month>)`` from the
  events that had occurred by then; what ``report_period`` and
  ``index_766_progress`` read for "open within deadline / overdue at the end of
  the period".
* ``dossier_facts``: the fold (fact sheet) per dossier, so later events update it.
* ``analytics_state``: the loader's watermark (latest business time seen) and
  position.

Tables written by the stream processors (``signals``, ``alerts``,
``metrics_daily``) have the shapes of :mod:`streams.outputs`; the embedded runner
keeps its operator state and checkpoint beside them (``stream_dossiers``,
``stream_keys``, ``stream_checkpoint``: :mod:`analytics.stream_store`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics.views import VIEWS
from streams.outputs import TABLES as OUTPUT_TABLES

if TYPE_CHECKING:
    import duckdb

# ``events`` has no key: the loader inserts an event in the transaction that folds it
# into its dossier's fact sheet, and never one at or below the sheet's last position,
# so a position is there once. An index on it would be rewritten whole at each of
# DuckDB's checkpoints (duckdb/duckdb#24848): the sink's time per event grew with
# the log (measured: commits 1.2 s per 100,000 events at the start, 8 s at 1,000,000).
EVENTS_SQL = """
CREATE TABLE IF NOT EXISTS events (
    position    BIGINT NOT NULL,
    event_id    VARCHAR NOT NULL,
    dossier_id  VARCHAR NOT NULL,
    type        VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ,
    appended_at TIMESTAMPTZ,
    actor_id    VARCHAR,
    actor_role  VARCHAR,
    agency      VARCHAR,
    data        JSON,
    hash        VARCHAR,
    prev_hash   VARCHAR
)
"""

DOSSIER_COLUMNS: dict[str, str] = {
    "dossier_id": "VARCHAR PRIMARY KEY",
    "applicant": "VARCHAR",  # pseudonym only
    "procedure_code": "VARCHAR",
    "procedure_version": "VARCHAR",
    "agency": "VARCHAR",
    "lead_agency": "VARCHAR",
    "channel": "VARCHAR",  # direct | online | postal
    "rule_set": "VARCHAR",
    "supplement_mode": "VARCHAR",  # restart | pause (of the rule set pinned at receipt)
    "granularity": "VARCHAR",  # date | minutes
    "status": "VARCHAR",
    "received_at": "TIMESTAMPTZ",
    "received_local": "TIMESTAMP",  # local wall time in the rule set's time zone
    "ended_at": "TIMESTAMPTZ",  # the 766 end: result, else return, else withdrawal
    "ended_local": "TIMESTAMP",
    "end_kind": "VARCHAR",  # result | returned | withdrawn
    "result": "VARCHAR",
    "allowance_value": "DOUBLE",
    "allowance_unit": "VARCHAR",
    "appointment_at": "TIMESTAMPTZ",
    "computed_due_at": "TIMESTAMPTZ",
    "original_due_at": "TIMESTAMPTZ",  # deadline of record (the rule set's supplement mode)
    "original_due_local": "TIMESTAMP",
    "current_due_at": "TIMESTAMPTZ",  # after an apology's new appointment
    "due_766_at": "TIMESTAMPTZ",  # deadline of record with the 766 pause clock
    "due_766_local": "TIMESTAMP",
    "on_time": "VARCHAR",  # view's class at the latest event (final once ended)
    "on_time_766": "VARCHAR",  # the same with the 766 pause clock
    "late_working_days": "DOUBLE",  # ended late: office time past the deadline, in working days
    "awaiting_supplement": "BOOLEAN",
    "supplement_requests": "INTEGER",
    "apologies": "INTEGER",
    "handovers": "INTEGER",
    "events": "INTEGER",
    "holder": "VARCHAR",
    "holder_agency": "VARCHAR",
    "step": "VARCHAR",
    "handling_official": "VARCHAR",  # who held the appraisal step, else the current holder
    "working_used_s": "BIGINT",
    "last_position": "BIGINT",
    "last_occurred_at": "TIMESTAMPTZ",
}

HANDOVER_COLUMNS: dict[str, str] = {
    "dossier_id": "VARCHAR NOT NULL",
    "seq": "INTEGER NOT NULL",
    "position": "BIGINT",
    "event_id": "VARCHAR",
    "handed_at": "TIMESTAMPTZ",
    "from_official": "VARCHAR",
    "from_agency": "VARCHAR",
    "to_official": "VARCHAR",
    "to_agency": "VARCHAR",
    "step": "VARCHAR",
    "budget_value": "DOUBLE",
    "budget_unit": "VARCHAR",
    "acknowledged": "BOOLEAN",
    "step_deadline": "TIMESTAMPTZ",
    "step_ended_at": "TIMESTAMPTZ",
    "step_working_s": "BIGINT",
    "result": "VARCHAR",  # early | on time | late; null while the step runs
    "note": "VARCHAR",
}

PERIOD_END_COLUMNS: dict[str, str] = {
    "dossier_id": "VARCHAR NOT NULL",
    "month_end": "DATE NOT NULL",  # last local day of the month
    "on_time": "VARCHAR",  # view(now = last instant of month_end).on_time
    "on_time_766": "VARCHAR",
    "original_due_at": "TIMESTAMPTZ",
    "awaiting_supplement": "BOOLEAN",
}

STATE_SQL = """
CREATE TABLE IF NOT EXISTS analytics_state (key VARCHAR PRIMARY KEY, value VARCHAR)
"""
FACTS_SQL = """
CREATE TABLE IF NOT EXISTS dossier_facts (dossier_id VARCHAR PRIMARY KEY, facts VARCHAR NOT NULL)
"""


def output_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of one stream output table (``signals``, ``alerts``,
    ``metrics_daily``), with the row shape of :mod:`streams.outputs`."""
    columns, key = OUTPUT_TABLES[table]
    cols = ", ".join(f'"{c}" {t.replace(" PRIMARY KEY", "")}' for c, t in columns.items())
    pkey = ", ".join(f'"{k}"' for k in key)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({pkey}))"


STREAM_STATE_SQL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS stream_dossiers (dossier_id VARCHAR PRIMARY KEY, state VARCHAR)",
    "CREATE TABLE IF NOT EXISTS stream_keys (key VARCHAR PRIMARY KEY, state VARCHAR)",
    "CREATE TABLE IF NOT EXISTS stream_checkpoint (name VARCHAR PRIMARY KEY, position BIGINT, "
    "watermark VARCHAR, final_day VARCHAR, events BIGINT)",
)
"""The embedded stream runner's operator state and checkpoint (:mod:`analytics.stream_store`)."""


def _table(name: str, columns: dict[str, str], key: tuple[str, ...] = ()) -> str:
    cols = ", ".join(f"{c} {t}" for c, t in columns.items())
    pkey = f", PRIMARY KEY ({', '.join(key)})" if key else ""
    return f"CREATE TABLE IF NOT EXISTS {name} ({cols}{pkey})"


TABLES_SQL: tuple[str, ...] = (
    EVENTS_SQL,
    _table("dossiers", DOSSIER_COLUMNS),
    _table("handovers", HANDOVER_COLUMNS, ("dossier_id", "seq")),
    _table("dossier_period_ends", PERIOD_END_COLUMNS, ("dossier_id", "month_end")),
    FACTS_SQL,
    STATE_SQL,
    output_ddl("signals"),
    output_ddl("alerts"),
    output_ddl("metrics_daily"),
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table and view that is missing (idempotent)."""
    for sql in TABLES_SQL:
        con.execute(sql)
    for sql in VIEWS.values():
        con.execute(sql)
