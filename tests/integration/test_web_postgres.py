"""``dossier serve`` on the deployment's PostgreSQL store: the ledger and the read models
there, read-only; a dossier page and the dashboard."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from starlette.testclient import TestClient

pytestmark = pytest.mark.integration


def test_serve_reads_the_postgres_ledger_and_read_models(pg_url: str, tmp_path: Path) -> None:
    from ledger.bootstrap import open_ledger
    from ledger.ingest import ingest_lines
    from ledger.settings import Settings
    from projections.runner import Projector, rebuild
    from projections.store import open_store
    from simulator import simulate
    from web.app import create_app

    settings = Settings.from_env(tmp_path / "data", store=pg_url)
    out = io.StringIO()
    simulate(1, 2, out, None)
    ledger = open_ledger(settings)
    assert ingest_lines(ledger, io.StringIO(out.getvalue())).rejected == 0
    store = open_store(settings)
    try:
        rebuild(ledger, Projector(store, ledger.rules), workers=1)
        open_now = len(store.select("rm_dossiers", "WHERE status NOT IN ('RETURNED', 'WITHDRAWN')"))
        workload = store.select("rm_workload")
    finally:
        store.close()
    position = ledger.max_position()

    client = TestClient(create_app(settings))
    codes = [r["dossier_id"] for r in client.get("/api/search", params={"q": "-"}).json()]
    assert codes
    api = client.get(f"/api/dossiers/{codes[0]}").json()
    assert api["chain"]["verified"] and api["trail"][0]["type"] == "DossierReceived"
    assert client.get(f"/dossiers/{codes[0]}").status_code == 200
    board = client.get("/api/dashboard").json()
    assert board["now"] is not None and sum(board["open_by_state"].values()) == open_now
    assert len(board["workload"]) == min(20, len(workload))
    assert client.get("/").status_code == 200
    assert client.get("/dossiers/nope").status_code == 404
    assert ledger.max_position() == position
