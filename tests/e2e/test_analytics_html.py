"""The HTML report opens in headless Chromium without console errors and shows its charts."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from analytics.sink import insert_outputs
from analytics.snapshot import publish
from cli.main import main
from streams.outputs import output_id

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
)

# Records uncaught errors and console.error calls on the page itself, so the DOM dump shows them.
ERROR_TRAP = (
    "<script>(function(){var h=document.documentElement;function note(m){"
    "h.setAttribute('data-errors',(h.getAttribute('data-errors')||'')+'|'+m)}"
    "window.addEventListener('error',function(e){note(e.message)});"
    "window.addEventListener('unhandledrejection',function(e){note(String(e.reason))});"
    "var ce=console.error;console.error=function(){note([].join.call(arguments,' '));"
    "ce.apply(console,arguments)}})()</script>"
)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "chromium not installed (.ci/run installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: not skipping)")
        pytest.skip(reason)
    return path


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit PNG (the filters undone)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    data, events = tmp / "data", tmp / "e.jsonl"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, [*args, "--data-dir", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    sim = ["simulate", "--days", "6", "--seed", "3", "--start", "2025-09-25", "--out", str(events)]
    assert runner.invoke(main, sim).exit_code == 0
    run("ingest", str(events))
    run("sink", "--source", "store")
    db = data / "analytics.duckdb"
    con = duckdb.connect(str(db))
    picked = con.execute(
        "SELECT dossier_id, agency, handling_official, procedure_code, received_at "
        "FROM dossiers ORDER BY dossier_id LIMIT 40"
    ).fetchall()
    kinds = ("late_forwarding", "ping_pong", "repeated_supplement")
    rows = [
        {
            "signal_id": output_id("test", d),
            "kind": kinds[i % 3],
            "severity": "warning",
            "dossier_id": d,
            "official_id": o,
            "agency": a,
            "procedure_code": p,
            "event_ids": [],
            "detected_at": r.isoformat(),
            "params": {"rule": "test"},
            "position": i + 1,
        }
        for i, (d, a, o, p, r) in enumerate(picked)
    ]
    con.execute("BEGIN")
    insert_outputs(con, "signals", rows)
    con.execute("COMMIT")
    con.close()
    publish(db, force=True)
    out = tmp / "report.html"
    run("report", "--period", "2025-Q3", "--format", "html", "--out", str(out))
    return out


def test_the_html_report_is_one_offline_file_with_every_chart(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "<script src=" not in text and '<link rel="stylesheet" href=' not in text
    assert "Plotly.newPlot" in text and len(text) > 3_000_000  # plotly.js is inlined
    assert text.count('class="plotly-graph-div"') == 5
    assert "FROM report_period WHERE period = " in text  # every figure names its view
    assert "FROM index_766_progress" in text


def test_chromium_renders_the_report_without_console_errors(report: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    page = tmp_path / "trapped.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("<head>", "<head>" + ERROR_TRAP, 1),
        encoding="utf-8",
    )
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    opening = dom.stdout[dom.stdout.index("<html") :].split(">", 1)[0]
    assert "data-errors" not in opening, opening  # no uncaught error, no console.error
    assert dom.stdout.count('class="main-svg"') >= 5  # plotly drew every chart
    assert "Uncaught" not in dom.stderr

    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [chromium, *flags, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    width, bpp, rows = _pixels(shot.read_bytes())
    colours: set[bytes] = set()
    ink = 0
    for line in rows[::4]:
        for x in range(0, width * bpp, bpp * 4):
            px = line[x : x + 3]
            colours.add(px)
            ink += px != b"\xff\xff\xff"
    sampled = len(rows[::4]) * len(range(0, width * bpp, bpp * 4))
    assert ink / sampled > 0.05, "the screenshot is blank"
    assert len(colours) > 30, "no charts: too few colours"
    print(json.dumps({"ink": round(ink / sampled, 3), "colours": len(colours)}))
