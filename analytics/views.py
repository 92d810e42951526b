"""The analysts' views: the official figures as SQL over the loaded tables.

Every class (early / on time / late, within deadline / overdue) is one the
loader stored from :func:`projections.state.view`; the SQL only places dossiers
in periods and compares local instants that view produced. Periods are local
calendar months, quarters and years (``periods``); ``period_end`` is exclusive
and "the end of the period" is its last instant.
"""

from __future__ import annotations

_STATE = "(SELECT value FROM analytics_state WHERE key = '{}')"
WATERMARK_LOCAL = f"CAST({_STATE.format('watermark_local')} AS TIMESTAMP)"
TIMEZONE = f"coalesce({_STATE.format('timezone')}, 'Asia/Ho_Chi_Minh')"


def _open_class(cls: str, due: str) -> str:
    """The class at the end of period ``p`` of a dossier still open then: the stored
    month-end state when the loader has closed that month, else (the month still
    running, figures provisional) the stored class and deadline compared with the
    period's last instant at the rule set's granularity."""
    return f"""CASE
        WHEN s.{cls} IS NOT NULL THEN s.{cls}
        WHEN d.{cls} IN ('EARLY', 'ON_TIME', 'LATE') THEN d.{cls}
        WHEN d.awaiting_supplement AND d.supplement_mode = 'restart' AND '{cls}' = 'on_time'
            THEN 'WITHIN_DEADLINE'
        WHEN CASE WHEN d.granularity = 'minutes'
                THEN date_trunc('minute', p.period_end - INTERVAL 1 MICROSECOND)
                     <= date_trunc('minute', d.{due})
                ELSE CAST(p.period_end - INTERVAL 1 DAY AS DATE) <= CAST(d.{due} AS DATE) END
            THEN 'WITHIN_DEADLINE'
        ELSE 'OVERDUE' END"""


VIEWS: dict[str, str] = {
    "periods": """
CREATE OR REPLACE VIEW periods AS
WITH m AS (
    SELECT CAST(range AS DATE) AS s
    FROM range(DATE '2010-01-01', DATE '2041-01-01', INTERVAL 1 MONTH)
)
SELECT strftime(s, '%Y-%m') AS period, 'month' AS kind,
       CAST(s AS TIMESTAMP) AS period_start, CAST(s + INTERVAL 1 MONTH AS TIMESTAMP) AS period_end
FROM m
UNION ALL
SELECT strftime(s, '%Y') || '-Q' || CAST(quarter(s) AS VARCHAR), 'quarter',
       CAST(s AS TIMESTAMP), CAST(s + INTERVAL 3 MONTH AS TIMESTAMP)
FROM m WHERE month(s) IN (1, 4, 7, 10)
UNION ALL
SELECT strftime(s, '%Y'), 'year', CAST(s AS TIMESTAMP), CAST(s + INTERVAL 1 YEAR AS TIMESTAMP)
FROM m WHERE month(s) = 1
""",
    "period_dossiers": f"""
CREATE OR REPLACE VIEW period_dossiers AS
SELECT p.period, p.kind, p.period_start, p.period_end,
       d.dossier_id, d.agency, d.channel, d.procedure_code, d.end_kind,
       d.received_local >= p.period_start AS is_new,
       d.ended_local IS NOT NULL AND d.ended_local < p.period_end AS is_resolved,
       d.on_time AS resolved_class,
       d.on_time_766 AS resolved_class_766,
       CASE WHEN d.ended_local IS NOT NULL AND d.ended_local < p.period_end THEN NULL
            ELSE {_open_class("on_time", "original_due_local")} END AS end_class,
       CASE WHEN d.ended_local IS NOT NULL AND d.ended_local < p.period_end THEN NULL
            ELSE {_open_class("on_time_766", "due_766_local")} END AS end_class_766,
       p.period_end <= coalesce({WATERMARK_LOCAL}, TIMESTAMP '-infinity') AS final
FROM periods p
JOIN dossiers d
  -- In a CASE on purpose: as plain comparisons the planner picks a sort-based range join
  -- (0.5 s per million dossiers); as one opaque predicate it filters a single scan.
  ON CASE WHEN d.received_local < p.period_end
               AND (d.ended_local IS NULL OR d.ended_local >= p.period_start)
          THEN true ELSE false END
LEFT JOIN dossier_period_ends s
  ON s.dossier_id = d.dossier_id AND s.month_end = CAST(p.period_end - INTERVAL 1 DAY AS DATE)
""",
    "report_period": """
CREATE OR REPLACE VIEW report_period AS
SELECT period, kind, period_start, period_end, agency, channel,
       count(*) FILTER (WHERE is_new AND channel = 'online') AS received_online,
       count(*) FILTER (WHERE is_new AND channel <> 'online') AS received_direct_postal,
       count(*) FILTER (WHERE is_new) AS received_new,
       count(*) FILTER (WHERE NOT is_new) AS carried_over,
       count(*) AS received_total,
       count(*) FILTER (WHERE is_resolved AND resolved_class = 'EARLY') AS resolved_early,
       count(*) FILTER (WHERE is_resolved AND resolved_class = 'ON_TIME') AS resolved_on_time,
       count(*) FILTER (WHERE is_resolved AND resolved_class = 'LATE') AS resolved_late,
       count(*) FILTER (WHERE is_resolved) AS resolved_total,
       count(*) FILTER (WHERE is_resolved AND end_kind = 'withdrawn') AS resolved_withdrawn,
       count(*) FILTER (WHERE NOT is_resolved
                        AND end_class IN ('WITHIN_DEADLINE', 'EARLY', 'ON_TIME')) AS open_within,
       count(*) FILTER (WHERE NOT is_resolved AND end_class IN ('OVERDUE', 'LATE')) AS open_overdue,
       'received_total' AS denominator,
       count(*) AS denominator_value,
       round((count(*) FILTER (WHERE is_resolved AND resolved_class = 'LATE')
              + count(*) FILTER (WHERE NOT is_resolved AND end_class IN ('OVERDUE', 'LATE')))
             / count(*), 4) AS late_share,
       bool_and(final) AS final
FROM period_dossiers
GROUP BY ALL
""",
    "index_766_progress": """
CREATE OR REPLACE VIEW index_766_progress AS
WITH c AS (
    SELECT period, kind, period_start, period_end, agency, final,
           (is_resolved AND resolved_class_766 IN ('EARLY', 'ON_TIME'))
           OR (NOT is_resolved AND end_class_766 IN ('EARLY', 'ON_TIME')) AS finished_on_time,
           NOT is_resolved AND end_class_766 = 'WITHIN_DEADLINE' AS open_within
    FROM period_dossiers
)
SELECT period, kind, period_start, period_end, agency,
       count(*) AS received_or_processed,
       count(*) FILTER (WHERE finished_on_time) AS finished_on_time,
       count(*) FILTER (WHERE open_within) AS open_within,
       'received_or_processed' AS denominator,
       round(20.0 * count(*) FILTER (WHERE finished_on_time OR open_within) / count(*), 4)
           AS progress,
       20 AS max_points,
       bool_and(final) AS final
FROM c
GROUP BY GROUPING SETS ((period, kind, period_start, period_end, agency),
                        (period, kind, period_start, period_end))
""",
    "on_time_by_agency_month": """
CREATE OR REPLACE VIEW on_time_by_agency_month AS
SELECT CAST(date_trunc('month', ended_local) AS DATE) AS month, agency,
       count(*) AS resolved,
       count(*) FILTER (WHERE on_time = 'EARLY') AS early,
       count(*) FILTER (WHERE on_time = 'ON_TIME') AS on_time,
       count(*) FILTER (WHERE on_time = 'LATE') AS late,
       round(count(*) FILTER (WHERE on_time <> 'LATE') / count(*), 4) AS on_time_rate
FROM dossiers
WHERE ended_local IS NOT NULL
GROUP BY ALL
""",
    "on_time_by_procedure_month": """
CREATE OR REPLACE VIEW on_time_by_procedure_month AS
SELECT CAST(date_trunc('month', ended_local) AS DATE) AS month, procedure_code,
       count(*) AS resolved,
       count(*) FILTER (WHERE on_time = 'EARLY') AS early,
       count(*) FILTER (WHERE on_time = 'ON_TIME') AS on_time,
       count(*) FILTER (WHERE on_time = 'LATE') AS late,
       round(count(*) FILTER (WHERE on_time <> 'LATE') / count(*), 4) AS on_time_rate,
       round(avg(working_used_s) / 3600, 2) AS avg_working_hours
FROM dossiers
WHERE ended_local IS NOT NULL
GROUP BY ALL
""",
    "official_workload": f"""
CREATE OR REPLACE VIEW official_workload AS
WITH held AS (
    SELECT holder AS official, holder_agency AS agency,
           count(*) AS open_held,
           count(*) FILTER (WHERE on_time = 'OVERDUE') AS overdue_held
    FROM dossiers WHERE ended_at IS NULL AND holder IS NOT NULL GROUP BY ALL
), handled AS (
    SELECT handling_official AS official,
           count(*) AS handled,
           count(*) FILTER (WHERE on_time = 'LATE') AS handled_late
    FROM dossiers WHERE ended_at IS NOT NULL AND handling_official IS NOT NULL GROUP BY ALL
), steps AS (
    SELECT to_official AS official, any_value(to_agency) AS agency,
           count(*) AS steps,
           count(*) FILTER (WHERE result = 'late') AS steps_late
    FROM handovers WHERE to_official IS NOT NULL GROUP BY ALL
)
SELECT official, coalesce(held.agency, steps.agency) AS agency,
       coalesce(open_held, 0) AS open_held, coalesce(overdue_held, 0) AS overdue_held,
       coalesce(handled, 0) AS handled, coalesce(handled_late, 0) AS handled_late,
       coalesce(steps, 0) AS steps, coalesce(steps_late, 0) AS steps_late,
       {WATERMARK_LOCAL} AS as_of
FROM held FULL OUTER JOIN handled USING (official) FULL OUTER JOIN steps USING (official)
""",
    "lateness_distribution": """
CREATE OR REPLACE VIEW lateness_distribution AS
SELECT CAST(date_trunc('month', ended_local) AS DATE) AS month, agency,
       CASE WHEN late_working_days <= 1 THEN '0-1'
            WHEN late_working_days <= 2 THEN '1-2'
            WHEN late_working_days <= 5 THEN '2-5'
            WHEN late_working_days <= 10 THEN '5-10'
            ELSE '>10' END AS late_working_days_bucket,
       count(*) AS dossiers
FROM dossiers
WHERE ended_local IS NOT NULL AND on_time = 'LATE'
GROUP BY ALL
""",
    "step_overdue": f"""
CREATE OR REPLACE VIEW step_overdue AS
SELECT CAST(date_trunc('month', timezone({TIMEZONE}, handed_at)) AS DATE) AS month,
       step, to_official AS official, to_agency AS agency,
       count(*) AS steps,
       count(*) FILTER (WHERE result = 'late') AS steps_late,
       count(*) FILTER (WHERE step_ended_at IS NULL
                        AND timezone({TIMEZONE}, step_deadline) < {WATERMARK_LOCAL})
           AS steps_open_overdue
FROM handovers
GROUP BY ALL
""",
    "signals_by_kind_agency": f"""
CREATE OR REPLACE VIEW signals_by_kind_agency AS
SELECT CAST(date_trunc('month', timezone({TIMEZONE}, detected_at)) AS DATE) AS month,
       kind, agency, severity, count(*) AS signals
FROM signals
GROUP BY ALL
""",
}
"""View name -> ``CREATE OR REPLACE VIEW`` (in dependency order)."""

REQUIRED = (
    "on_time_by_agency_month",
    "on_time_by_procedure_month",
    "official_workload",
    "report_period",
    "index_766_progress",
)
