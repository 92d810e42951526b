"""What a person sees in a browser (headless Debian Chromium driven by Playwright):
a dossier page, the dashboard with its charts drawn, and a live alert arriving."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import web_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI installs it: see .ci/run)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    if not Path(CHROMIUM).exists():
        _need("Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright is not installed (pip install -e '.[test]')")
    settings = web_data.build(tmp_path_factory.mktemp("browser") / "data")
    db = settings.data_dir / "analytics.duckdb"
    with web_data.serving(settings, poll_seconds=0.2) as base:
        import httpx

        codes = [r["dossier_id"] for r in httpx.get(f"{base}/api/search?q=-&limit=50").json()]
        agency = httpx.get(f"{base}/api/agencies").json()[0]
        web_data.insert(db, "metrics_daily", web_data.metrics(agency, days=10))
        web_data.insert(db, "signals", [web_data.signal(codes[0], agency, n=i) for i in range(4)])
        web_data.insert(db, "alerts", [web_data.alert(codes[0], agency)])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield browser, base, settings, codes, agency
            finally:
                browser.close()


def test_a_dossier_page(site) -> None:
    browser, base, _, codes, _ = site
    page = browser.new_page()
    page.goto(f"{base}/dossiers/{codes[3]}")
    assert codes[3] in page.locator("h1").inner_text()
    assert page.locator("#chain").inner_text().startswith("Hash chain verified")
    events = int(page.locator("#chain").inner_text().split("(")[1].split()[0])
    assert page.locator("#timeline tbody tr").count() == events
    assert page.locator("#control-sheet tbody tr").count() >= 1
    assert page.locator("#deadline-state").inner_text() != ""
    # the search box on the page finds the dossier
    page.fill("input[name=q]", codes[4])
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"**/dossiers/{codes[4]}")
    assert codes[4] in page.locator("h1").inner_text()


def test_the_dashboard_draws_its_charts(site) -> None:
    browser, base, _, _, agency = site
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/agencies/{agency}")
    page.wait_for_selector("#trend-chart .main-svg", timeout=15_000)
    page.wait_for_selector("#state-chart .main-svg", timeout=15_000)
    # the trend line has one point per day of metrics; the bars one per deadline state
    assert page.locator("#trend-chart .scatterlayer .trace").count() == 2
    assert (
        page.locator("#trend-chart .scatterlayer .trace").first.locator("path.js-line").count() == 1
    )
    assert page.locator("#state-chart .barlayer .point").count() == 4
    labels = page.locator("#state-chart .xtick text").all_text_contents()
    assert labels == ["within deadline", "overdue", "awaiting supplement", "resolved not returned"]
    assert "ping_pong" in page.locator("#signals").inner_text()
    assert not errors, errors


def test_a_live_alert_arrives(site) -> None:
    browser, base, settings, codes, agency = site
    page = browser.new_page()
    page.goto(f"{base}/alerts")
    page.wait_for_function("document.getElementById('feed-status').textContent === 'live'")
    before = page.locator("#alerts tbody tr").count()
    new = web_data.alert(codes[5], agency, level="three_quarters", n=3)
    web_data.insert(settings.data_dir / "analytics.duckdb", "alerts", [new])
    page.wait_for_selector(f"#alerts tbody tr.new a[href='/dossiers/{codes[5]}']", timeout=10_000)
    assert page.locator("#alerts tbody tr").count() == before + 1
    assert page.locator("#alerts tbody tr").first.locator(".level-three_quarters").count() == 1


def test_an_alert_fired_by_ingested_events_arrives_live(site, tmp_path: Path) -> None:
    """The whole path: events into ``dossier run`` -> stream processors -> alerts table ->
    published snapshot -> server-sent event -> a new row on the open /alerts page."""
    import io
    import subprocess
    import sys

    from ledger.settings import Settings
    from simulator import simulate

    browser = site[0]
    out = io.StringIO()
    simulate(4, 3, out, None)
    lines = out.getvalue().splitlines(keepends=True)
    half = len(lines) // 2
    settings = Settings.from_env(tmp_path / "data")
    cli = [sys.executable, "-c", "from cli.main import main; main()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env["DOSSIER_DATA_DIR"] = str(settings.data_dir)

    def run(part: list[str]) -> None:
        done = subprocess.run(
            [*cli, "run", "--inbox", "-"],
            input="".join(part).encode(),
            env=env,
            capture_output=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]

    run(lines[:half])
    with web_data.serving(settings, poll_seconds=0.2) as base:
        page = browser.new_page()
        page.goto(f"{base}/alerts")
        page.wait_for_function("document.getElementById('feed-status').textContent === 'live'")
        before = page.locator("#alerts tbody tr").count()
        run(lines[half:])
        page.wait_for_selector("#alerts tbody tr.new", timeout=30_000)
        assert page.locator("#alerts tbody tr").count() > before
