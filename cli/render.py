"""Output of rows as an aligned table, CSV, JSON or HTML (the choices of ``--format``).

Renderers take rows (dicts) and the columns to show, in order; nested values
(a budget ``{value, unit}``) are flattened to short text for table, CSV and
HTML, and kept as JSON in JSON output.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "csv", "json", "html")


def cell(value: Any) -> str:
    """A value as short text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and set(value) == {"value", "unit"}:
        return f"{value['value']} {value['unit']}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    texts = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(t[i]) for t in texts)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for t in texts:
        lines.append("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip())
    return "\n".join(lines)


def key_values(record: dict[str, Any]) -> str:
    """One record as ``key  value`` lines (for a single state)."""
    width = max((len(k) for k in record), default=0)
    return "\n".join(f"{k.ljust(width)}  {cell(v)}" for k, v in record.items())


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([cell(r.get(c)) for c in columns])
    return buf.getvalue().rstrip("\n")


def to_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2)


def to_html(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    title: str = "",
    header: dict[str, Any] | None = None,
) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
        "</style></head><body>",
    ]
    if title:
        parts.append(f"<h1>{e(title)}</h1>")
    if header:
        parts.append("<dl>")
        parts.extend(f"<dt>{e(k)}</dt><dd>{e(cell(v))}</dd>" for k, v in header.items())
        parts.append("</dl>")
    parts.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in columns))
    parts.append("</tr></thead><tbody>")
    for r in rows:
        parts.append("<tr>" + "".join(f"<td>{e(cell(r.get(c)))}</td>" for c in columns) + "</tr>")
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts)


def render(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    *,
    title: str = "",
    header: dict[str, Any] | None = None,
) -> str:
    """Rows in one of :data:`FORMATS` (JSON carries the header and every field)."""
    match fmt:
        case "table":
            head = key_values(header) + "\n\n" if header else ""
            return head + table(rows, columns)
        case "csv":
            return to_csv(rows, columns)
        case "json":
            return to_json({**({"header": header} if header else {}), "rows": list(rows)})
        case "html":
            return to_html(rows, columns, title=title, header=header)
        case _:
            raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
