"""The periodic report (domain brief §6) as Markdown, CSV or one self-contained HTML file.

Every figure is read from a view of the analysts' database, and each section
names the query it came from, so a reader can rerun it with ``dossier query``.
The HTML report embeds plotly.js (no network needed) and draws: the on-time
trend per agency, the lateness distribution, overdue steps by step and official,
the top signals by kind and agency, and the slowest procedures.
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics.connection import database_path
from analytics.snapshot import connect_reader

if TYPE_CHECKING:
    import duckdb

    from ledger.settings import Settings

PERIOD_RE = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")
FORMATS = ("md", "csv", "html")

FORM_COLUMNS = (
    "received_online",
    "received_direct_postal",
    "received_new",
    "carried_over",
    "received_total",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "resolved_total",
    "resolved_withdrawn",
    "open_within",
    "open_overdue",
)


def parse_period(text: str) -> tuple[str, date, date]:
    """``YYYY-MM`` | ``YYYY-Qn`` | ``YYYY`` -> (kind, first day, first day after)."""
    m = PERIOD_RE.match(text)
    if not m:
        raise ValueError(f"period {text!r}: expected YYYY-MM, YYYY-Qn or YYYY")
    year = int(m.group(1))
    if m.group(2):
        start = date(year, int(m.group(2)), 1)
        months, kind = 1, "month"
    elif m.group(3):
        start = date(year, 3 * int(m.group(3)) - 2, 1)
        months, kind = 3, "quarter"
    else:
        start, months, kind = date(year, 1, 1), 12, "year"
    k = start.month - 1 + months
    return kind, start, date(year + k // 12, k % 12 + 1, 1)


@dataclass
class Section:
    title: str
    sql: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    note: str = ""
    chart: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _literal(value: Any) -> str:
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Section:
    """Run ``sql``; the section shows it with its parameters written in, ready to rerun
    with ``dossier query``."""
    cur = con.execute(sql, params)
    columns = [d[0] for d in cur.description]
    pieces = sql.split("?")
    shown = pieces[0] + "".join(
        _literal(v) + rest for v, rest in zip(params, pieces[1:], strict=True)
    )
    return Section("", shown, columns, cur.fetchall())


def build(con: duckdb.DuckDBPyConnection, period: str, agency: str | None = None) -> list[Section]:
    """The report's sections (tables, their queries, and chart data) for ``period``."""
    kind, start, end = parse_period(period)
    ag = "" if agency is None else " AND agency = ?"
    agp: list[Any] = [] if agency is None else [agency]
    sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in FORM_COLUMNS)
    sections = []

    s = _fetch(
        con,
        f"SELECT agency, channel, {', '.join(FORM_COLUMNS)}, denominator, late_share, final "
        f"FROM report_period WHERE period = ?{ag} ORDER BY agency, channel",
        [period, *agp],
    )
    total = con.execute(
        f"SELECT {sums}, sum(received_total)::BIGINT AS denominator_value, "
        "round((sum(resolved_late) + sum(open_overdue)) / sum(received_total), 4), "
        f"bool_and(final) FROM report_period WHERE period = ?{ag}",
        [period, *agp],
    ).fetchone()
    s.title = "Period report (form II.06a): received, resolved, in progress"
    s.note = (
        "Received = new (online; direct and postal) + carried over = resolved + in progress "
        "at the end of the period. Classes from the deadline of record (Decree 61/118 rules "
        "pinned at receipt). Denominator: received_total. late_share = (resolved late + open "
        "overdue) / received_total."
    )
    s.extra["total"] = total
    sections.append(s)

    s = _fetch(
        con,
        "SELECT coalesce(agency, 'PROVINCE') AS agency, received_or_processed, finished_on_time, "
        f"open_within, denominator, progress, max_points, final FROM index_766_progress "
        f"WHERE period = ?{' AND (agency = ? OR agency IS NULL)' if agency else ''} "
        "ORDER BY agency NULLS FIRST",
        [period, *agp],
    )
    s.title = "766 index: progress component (QĐ 766/QĐ-TTg)"
    s.note = (
        "progress = 20 x (finished on time + open within deadline) / dossiers received or "
        "processed in the period; supplement waits paused (766 clock); more than one "
        "supplement request counts as late; a dossier awaiting a supplement ends at the request."
    )
    sections.append(s)

    back = start.year * 12 + start.month - 1 - (11 if kind == "month" else 0)
    trend_start = date(back // 12, back % 12 + 1, 1)
    s = _fetch(
        con,
        "SELECT month, agency, resolved, early, on_time, late, on_time_rate "
        f"FROM on_time_by_agency_month WHERE month >= ? AND month < ?{ag} "
        "ORDER BY agency, month",
        [trend_start, end, *agp],
    )
    s.title = "On-time rate per agency and month"
    s.note = (
        "on_time_rate = (early + on time) / resolved, by month of the end (trend: up to 12 months)."
    )
    sections.append(s)

    s = _fetch(
        con,
        "SELECT late_working_days_bucket, sum(dossiers)::BIGINT AS dossiers "
        f"FROM lateness_distribution WHERE month >= ? AND month < ?{ag} "
        "GROUP BY ALL ORDER BY min(CASE late_working_days_bucket WHEN '0-1' THEN 1 "
        "WHEN '1-2' THEN 2 WHEN '2-5' THEN 3 WHEN '5-10' THEN 4 ELSE 5 END)",
        [start, end, *agp],
    )
    s.title = "Lateness distribution of dossiers resolved late"
    s.note = "Office time past the deadline of record, in working days."
    sections.append(s)

    s = _fetch(
        con,
        "SELECT official, step, sum(steps_late)::BIGINT AS steps_late, "
        "sum(steps_open_overdue)::BIGINT AS steps_open_overdue, sum(steps)::BIGINT AS steps "
        f"FROM step_overdue WHERE month >= ? AND month < ?{ag} GROUP BY ALL "
        "HAVING sum(steps_late) + sum(steps_open_overdue) > 0 "
        "ORDER BY sum(steps_late) + sum(steps_open_overdue) DESC, official, step LIMIT 20",
        [start, end, *agp],
    )
    s.title = "Overdue steps by step and official (top 20)"
    s.note = "A step is late when it ended after its own deadline (control sheet, Form 05)."
    sections.append(s)

    s = _fetch(
        con,
        "SELECT kind, coalesce(agency, '-') AS agency, sum(signals)::BIGINT AS signals "
        f"FROM signals_by_kind_agency WHERE month >= ? AND month < ?{ag} GROUP BY ALL "
        "ORDER BY signals DESC, kind, agency LIMIT 30",
        [start, end, *agp],
    )
    s.title = "Top signals by kind and agency"
    s.note = "Misconduct signals detected in the period (domain brief §8)."
    sections.append(s)

    s = _fetch(
        con,
        "SELECT procedure_code, sum(resolved)::BIGINT AS resolved, "
        "round(sum(avg_working_hours * resolved) / sum(resolved), 2) AS avg_working_hours, "
        "sum(late)::BIGINT AS late "
        "FROM on_time_by_procedure_month WHERE month >= ? AND month < ? GROUP BY ALL "
        "ORDER BY avg_working_hours DESC, procedure_code LIMIT 10",
        [start, end],
    )
    s.title = "Slowest procedures (office hours used, average)"
    s.note = "Working time from receipt (or restart) to the end, by month of the end."
    sections.append(s)
    return sections


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1 else f"{v:,.2f}"
    return str(v)


def render_md(period: str, sections: list[Section], agency: str | None, as_of: str) -> str:
    out = [f"# Periodic report {period}" + (f" — agency {agency}" if agency else ""), ""]
    out.append(f"Data as of (watermark): {as_of}. Every table names the query it comes from.")
    for s in sections:
        out += ["", f"## {s.title}", "", s.note, "", f"Source: `{' '.join(s.sql.split())}`", ""]
        rows = list(s.rows)
        if "total" in s.extra and s.extra["total"] is not None:
            t = s.extra["total"]
            rows.append(("TOTAL", "", *t[: len(FORM_COLUMNS)], "received_total", t[-2], t[-1]))
        out.append("| " + " | ".join(s.columns) + " |")
        out.append("|" + "---|" * len(s.columns))
        out += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
        if not rows:
            out.append("| " + " | ".join("" for _ in s.columns) + " |")
    return "\n".join(out) + "\n"


def render_csv(sections: list[Section]) -> str:
    """The form's table: one row per agency and channel, then the total."""
    s = sections[0]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(s.columns)
    w.writerows(s.rows)
    t = s.extra.get("total")
    if t is not None and t[0] is not None:
        w.writerow(["TOTAL", "", *t[: len(FORM_COLUMNS)], "received_total", t[-2], t[-1]])
    return buf.getvalue()


def _charts(sections: list[Section]) -> list[tuple[str, Any]]:
    """Plotly figures from the sections' rows (one per chart section)."""
    import plotly.graph_objects as go

    by = {s.title: s for s in sections}
    figs = []
    trend = by["On-time rate per agency and month"]
    volume: dict[str, int] = {}
    for r in trend.rows:
        volume[r[1]] = volume.get(r[1], 0) + r[2]
    top = sorted(volume, key=lambda a: (-volume[a], a))[:10]
    fig = go.Figure()
    for ag in top:
        pts = [r for r in trend.rows if r[1] == ag]
        fig.add_trace(
            go.Scatter(
                x=[str(r[0])[:7] for r in pts],
                y=[r[6] for r in pts],
                mode="lines+markers",
                name=ag,
            )
        )
    fig.update_layout(
        title="On-time rate per agency (10 busiest)",
        yaxis_tickformat=".1%",
        xaxis_type="category",
    )
    figs.append((trend.title, fig))

    lat = by["Lateness distribution of dossiers resolved late"]
    fig = go.Figure(go.Bar(x=[r[0] for r in lat.rows], y=[r[1] for r in lat.rows]))
    fig.update_layout(title="Dossiers resolved late, by working days late")
    figs.append((lat.title, fig))

    st = by["Overdue steps by step and official (top 20)"]
    fig = go.Figure()
    for step in sorted({r[1] for r in st.rows}):
        pts = [r for r in st.rows if r[1] == step]
        fig.add_trace(
            go.Bar(y=[r[0] for r in pts], x=[r[2] + r[3] for r in pts], name=step, orientation="h")
        )
    fig.update_layout(title="Late or overdue steps by official and step", barmode="stack")
    figs.append((st.title, fig))

    sg = by["Top signals by kind and agency"]
    fig = go.Figure()
    for kind in sorted({r[0] for r in sg.rows}):
        pts = [r for r in sg.rows if r[0] == kind]
        fig.add_trace(go.Bar(x=[r[1] for r in pts], y=[r[2] for r in pts], name=kind))
    fig.update_layout(title="Signals by kind and agency", barmode="stack")
    figs.append((sg.title, fig))

    sp = by["Slowest procedures (office hours used, average)"]
    fig = go.Figure(go.Bar(y=[r[0] for r in sp.rows], x=[r[2] for r in sp.rows], orientation="h"))
    fig.update_layout(title="Slowest procedures: average office hours used")
    figs.append((sp.title, fig))
    return figs


def _html_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{e(_cell(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rows_with_total(s: Section) -> list[tuple[Any, ...]]:
    rows = list(s.rows)
    t = s.extra.get("total")
    if t is not None and t[0] is not None:
        rows.append(("TOTAL", "", *t[: len(FORM_COLUMNS)], "received_total", t[-2], t[-1]))
    return rows


def render_html(period: str, sections: list[Section], agency: str | None, as_of: str) -> str:
    """One self-contained page: the headline figures, then each chart with its query and
    data; plotly.js is inlined once (the page needs no network)."""
    import plotly.io as pio

    e = html.escape
    figs = dict(_charts(sections))
    form, i766 = sections[0], sections[1]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Periodic report {e(period)}</title>",
        "<style>body{font-family:sans-serif;margin:1em 2em;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
        "td,th{border:1px solid #aaa;padding:2px 6px}th{background:#eef}"
        "code{font-size:11px;color:#555}details{margin:.3em 0 1.5em}</style></head><body>",
        f"<h1>Periodic report {e(period)}{' — agency ' + e(agency) if agency else ''}</h1>",
        f"<p>Data as of (watermark): {e(as_of)}. Every figure names the query it comes from "
        "(rerun it with <code>dossier query</code>).</p>",
        f"<h2>{e(form.title)}: totals</h2><p>{e(form.note)}</p>",
    ]
    total = [r for r in _rows_with_total(form) if r[0] == "TOTAL"]
    parts.append(_html_table(form.columns, total))
    parts.append(f"<h2>{e(i766.title)}</h2><p>{e(i766.note)}</p>")
    headline = i766.rows if agency else [r for r in i766.rows if r[0] == "PROVINCE"]
    parts.append(_html_table(i766.columns, headline))
    first = True
    for s in sections[2:]:
        parts.append(f"<h2>{e(s.title)}</h2><p>{e(s.note)}</p>")
        if s.title in figs:
            parts.append(
                pio.to_html(
                    figs[s.title],
                    include_plotlyjs=first,
                    full_html=False,
                    default_height="420px",
                    config={"displaylogo": False, "responsive": True},
                )
            )
            first = False
        parts.append(f"<p>Source: <code>{e(' '.join(s.sql.split()))}</code></p>")
        parts.append(f"<details><summary>data ({len(s.rows)} rows)</summary>")
        parts.append(_html_table(s.columns, s.rows) + "</details>")
    for s in (form, i766):
        parts.append(f"<h2>{e(s.title)}: by agency</h2>")
        parts.append(f"<p>Source: <code>{e(' '.join(s.sql.split()))}</code></p>")
        parts.append(f"<details><summary>data ({len(s.rows)} rows)</summary>")
        parts.append(_html_table(s.columns, _rows_with_total(s)) + "</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    settings: Settings,
    period: str,
    fmt: str,
    out: Path,
    agency: str | None = None,
    *,
    db_path: Path | None = None,
) -> Path:
    """Write the report of ``period`` in ``fmt`` (md | csv | html) to ``out``; return ``out``.

    Reads the published snapshot of ``DATA_DIR/analytics.duckdb`` (or ``db_path``).
    """

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    parse_period(period)
    con, _ = connect_reader(db_path or database_path(settings))
    try:
        sections = build(con, period, agency)
        row = con.execute("SELECT value FROM analytics_state WHERE key = 'watermark'").fetchone()
    finally:
        con.close()
    as_of = row[0] if row else "nothing loaded"
    if fmt == "md":
        text = render_md(period, sections, agency, as_of)
    elif fmt == "csv":
        text = render_csv(sections)
    else:
        text = render_html(period, sections, agency, as_of)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
