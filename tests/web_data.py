"""A small data directory for the web tests: a simulated province in the ledger, its
read models, and hand-written rows in the stream processors' DuckDB tables."""

from __future__ import annotations

import io
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from analytics.schema import output_ddl
from ledger.settings import Settings
from streams.outputs import TABLES, output_id
from web.server import serving  # noqa: F401  (the tests start the app with it)


def build(data_dir: Path, days: int = 3, seed: int = 1) -> Settings:
    """Simulate, ingest and project ``days`` of a province into ``data_dir``."""
    from ledger.bootstrap import open_ledger
    from ledger.ingest import ingest_lines
    from projections.runner import Projector, rebuild
    from projections.store import open_store
    from simulator import simulate

    settings = Settings.from_env(data_dir)
    out = io.StringIO()
    simulate(days, seed, out, None)
    ledger = open_ledger(settings)
    report = ingest_lines(ledger, io.StringIO(out.getvalue()))
    assert report.rejected == 0, report.errors[:3]
    store = open_store(settings)
    try:
        rebuild(ledger, Projector(store, ledger.rules), workers=1)
    finally:
        store.close()
    return settings


def insert(db: Path, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows into an output table (created with its fixed shape), as the processors would."""
    import duckdb
    import orjson

    columns = list(TABLES[table][0])
    deadline = time.monotonic() + 10
    while True:  # the web app in this process may hold a read-only connection for a moment
        try:
            con = duckdb.connect(str(db))
            break
        except duckdb.ConnectionException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    try:
        for name in TABLES:
            con.execute(output_ddl(name))
        marks = ", ".join("?" * len(columns))
        con.executemany(
            f"INSERT INTO {table} VALUES ({marks})",
            [
                [
                    orjson.dumps(r.get(c)).decode()
                    if c in ("event_ids", "recipients", "params")
                    else r.get(c)
                    for c in columns
                ]
                for r in rows
            ],
        )
    finally:
        con.close()
    from analytics.snapshot import publish

    publish(db, force=True)  # as every writer does after a commit


def alert(dossier_id: str, agency: str, level: str = "due", n: int = 0) -> dict[str, Any]:
    return {
        "alert_id": output_id("test-alert", dossier_id, level, n),
        "kind": "deadline",
        "level": level,
        "dossier_id": dossier_id,
        "official_id": "off-1",
        "agency": agency,
        "procedure_code": "1.000001",
        "due_at": "2025-09-05T17:00:00+07:00",
        "fired_at": f"2025-09-0{1 + n % 8}T10:00:00+07:00",
        "recipients": ["official:off-1"],
        "replayed": False,
        "params": {"share": 1.0},
    }


def signal(dossier_id: str, agency: str, kind: str = "ping_pong", n: int = 0) -> dict[str, Any]:
    return {
        "signal_id": output_id("test-signal", dossier_id, kind, n),
        "kind": kind,
        "severity": "severe" if n % 2 else "warning",
        "dossier_id": dossier_id,
        "official_id": f"off-{n % 3}",
        "agency": agency,
        "procedure_code": "1.000001",
        "event_ids": ["e1"],
        "detected_at": "2025-09-02T10:00:00+07:00",
        "params": {"rule": kind},
        "position": n + 1,
    }


def metrics(agency: str, days: int = 5) -> list[dict[str, Any]]:
    rows = []
    for i in range(days):
        for window in ("day", "rolling_30d"):
            rows.append(
                {
                    "day": date(2025, 9, 1) + timedelta(days=i),
                    "window": window,
                    "scope": "agency",
                    "key": agency,
                    "agency": agency,
                    "received": 10,
                    "resolved_early": 2,
                    "resolved_on_time": 5 + i % 2,
                    "resolved_late": 1,
                    "open_within": 3,
                    "open_overdue": 1,
                    "on_time_rate": 0.8,
                    "late_events": 0,
                    "final": True,
                }
            )
    return rows
