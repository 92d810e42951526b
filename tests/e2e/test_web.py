"""``dossier serve``: pages, JSON API, errors, the live alert feed, and that nothing writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests import web_data
from web.app import create_app


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("web")
    settings = web_data.build(d / "data")
    client = TestClient(create_app(settings, poll_seconds=0.05))
    codes = [
        r["dossier_id"] for r in client.get("/api/search", params={"q": "-", "limit": 500}).json()
    ]
    agency = client.get("/api/agencies").json()[0]
    db = settings.data_dir / "analytics.duckdb"
    web_data.insert(db, "alerts", [web_data.alert(codes[0], agency, n=0)])
    web_data.insert(db, "signals", [web_data.signal(codes[0], agency, n=i) for i in range(3)])
    web_data.insert(db, "metrics_daily", web_data.metrics(agency))
    return settings, client, codes, agency


def test_dossier_page_shows_timeline_sheet_state_and_chain(data) -> None:
    settings, client, codes, _ = data
    page = client.get(f"/dossiers/{codes[0]}")
    assert page.status_code == 200
    assert "Hash chain verified" in page.text and 'name="q"' in page.text
    api = client.get(f"/api/dossiers/{codes[0]}").json()
    assert api["chain"]["verified"] and api["chain"]["events"] == len(api["trail"])
    assert api["trail"][0]["type"] == "DossierReceived"
    assert api["state"]["dossier_id"] == codes[0]
    assert api["deadline_state"] in {
        "closed",
        "within_deadline",
        "overdue",
        "awaiting_supplement",
        "resolved_not_returned",
    }
    # judged at the latest business time in the read models, not the wall clock
    assert api["now"] >= api["state"]["last_occurred_at"][:10] and api["now"].startswith("2025")
    assert [a["level"] for a in api["alerts"]] == ["due"] and len(api["signals"]) == 3
    for row in api["trail"]:
        assert str(row["position"]) in page.text


def test_unknown_dossier_is_a_404_page_and_bad_parameters_a_400(data) -> None:
    _, client, _, _ = data
    page = client.get("/dossiers/000.00.00.X00-000000-0000")
    assert page.status_code == 404 and "unknown dossier" in page.text and 'name="q"' in page.text
    assert client.get("/api/dossiers/nope").json() == {
        "error": "unknown dossier 'nope'",
        "status": 404,
    }
    bad = client.get("/api/alerts", params={"limit": "many"})
    assert bad.status_code == 400 and bad.json()["error"] == "limit: not an integer: 'many'"
    assert client.get("/api/alerts", params={"limit": 0}).status_code == 400
    assert "level: one of" in client.get("/api/alerts", params={"level": "loud"}).json()["error"]
    assert client.get("/alerts", params={"level": "loud"}).status_code == 400
    assert client.get("/api/search").status_code == 400
    assert client.get("/agencies/NOPE").status_code == 404


def test_dashboard_has_trend_states_signals_and_workload(data) -> None:
    _, client, _, agency = data
    d = client.get("/api/dashboard", params={"agency": agency}).json()
    assert [r["day"] for r in d["trend"]] == [f"2025-09-0{i}" for i in range(1, 6)]
    assert d["trend"][0]["ok_30d"] == 7 and d["trend"][0]["resolved_30d"] == 8
    assert sum(d["open_by_state"].values()) >= 0 and set(d["open_by_state"]) >= {"overdue"}
    assert d["top_signals"]["by_kind"] == [
        {"kind": "ping_pong", "severity": "warning", "n": 2},
        {"kind": "ping_pong", "severity": "severe", "n": 1},
    ]
    assert all(w["agency"] == agency for w in d["workload"])
    page = client.get(f"/agencies/{agency}")
    assert page.status_code == 200 and "/static/plotly.min.js" in page.text
    assert client.get("/").status_code == 200
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_search_redirects_an_exact_code_and_lists_partial_matches(data) -> None:
    _, client, codes, _ = data
    exact = client.get("/search", params={"q": codes[0]}, follow_redirects=False)
    assert exact.status_code == 303 and exact.headers["location"] == f"/dossiers/{codes[0]}"
    partial = client.get("/search", params={"q": codes[0][:-1]})
    assert partial.status_code == 200 and codes[0] in partial.text


def test_openapi_documents_the_json_api(data) -> None:
    _, client, _, _ = data
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/dossiers/{code}", "/api/dashboard", "/api/alerts", "/api/alerts/stream"} <= set(
        doc["paths"]
    )


def test_live_feed_sends_an_alert_written_after_it_connected(data) -> None:
    import httpx

    settings, client, codes, agency = data
    last = max(a["seq"] for a in client.get("/api/alerts").json())
    new = web_data.alert(codes[1], agency, level="half", n=7)
    # One DuckDB instance per file and process: the other app's open snapshot would keep
    # the served app on the old copy (one app per process in real use).
    client.app.state.site.analytics.close()
    with web_data.serving(settings) as base:
        with httpx.stream("GET", f"{base}/api/alerts/stream", timeout=10) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.iter_lines()
            assert next(lines).startswith("retry:")
            web_data.insert(settings.data_dir / "analytics.duckdb", "alerts", [new])
            got = []
            for line in lines:
                got.append(line)
                if line.startswith("data: "):
                    break
    assert f"id: {last + 1}" in got and f'"alert_id": "{new["alert_id"]}"' in got[-1]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nothing_writes_to_the_ledger(data) -> None:
    settings, _, codes, agency = data
    files = [settings.sqlite_path, settings.data_dir / "keys.sqlite3"]
    before = [_digest(f) for f in files]
    # Opening it writes nothing either. ``with``: its shutdown closes its snapshot, which
    # would otherwise stay open in this process and keep DuckDB handing the other app
    # of these tests the old copy of that path.
    with TestClient(create_app(settings)) as client:
        for url in [
            "/",
            f"/agencies/{agency}",
            f"/dossiers/{codes[2]}",
            "/alerts",
            "/api/dashboard",
        ]:
            assert client.get(url).status_code == 200
            assert client.post(url).status_code == 405
            assert client.delete(url).status_code == 405
    assert [_digest(f) for f in files] == before


def test_a_deleted_last_event_shows_on_the_dossier_page(tmp_path: Path) -> None:
    import sqlite3

    settings = web_data.build(tmp_path / "data", days=1)
    con = sqlite3.connect(settings.sqlite_path)
    code, last = con.execute(
        "SELECT originator_id, MAX(originator_version) FROM stored_events "
        "GROUP BY originator_id HAVING COUNT(*) > 2 ORDER BY originator_id LIMIT 1"
    ).fetchone()
    con.execute(
        "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
        (code, last),
    )
    con.commit()
    con.close()
    client = TestClient(create_app(settings))
    api = client.get(f"/api/dossiers/{code}").json()
    assert not api["chain"]["verified"] and api["chain"]["problems"]
    page = client.get(f"/dossiers/{code}")
    assert page.status_code == 200 and "Hash chain FAILED" in page.text


def test_serve_refuses_a_data_dir_without_a_ledger(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no ledger in" in result.output
    assert not (tmp_path / "none" / "ledger.sqlite3").exists()


def test_the_deadline_state_is_judged_at_the_stream_watermark(data) -> None:
    import duckdb

    settings, client, codes, _ = data
    db = settings.data_dir / "analytics.duckdb"
    client.app.state.site.analytics.close()
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE IF NOT EXISTS stream_checkpoint (name VARCHAR PRIMARY KEY, position BIGINT, "
        "watermark VARCHAR, final_day VARCHAR, events BIGINT)"
    )
    con.execute(
        "INSERT INTO stream_checkpoint VALUES ('embedded', 1, "
        """'{"lateness_s": 600.0, "seen": "2030-01-02T10:10:00+07:00", "pushed": null}', NULL, 1)"""
    )
    con.close()
    from analytics.snapshot import publish

    publish(db, force=True)
    api = client.get(f"/api/dossiers/{codes[0]}").json()
    assert api["now"] == "2030-01-02T10:00:00+07:00"
    assert api["state"]["as_of"] == api["now"]
