"""``dossier sink --source kafka`` fills the whole schema: events and the stream outputs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger import topics
from ledger.bootstrap import open_ledger
from ledger.kafka import ensure_topics, make_producer
from ledger.relay import Relay
from ledger.settings import Settings
from simulator.factories import event_stream
from streams.outputs import output_id

pytestmark = pytest.mark.integration


def _signal(n: int) -> dict:
    return {
        "signal_id": output_id("signal", n),
        "kind": "ping_pong",
        "severity": "warning",
        "dossier_id": f"D{n}",
        "official_id": "A/CB01",
        "agency": "A",
        "procedure_code": "1.000001",
        "event_ids": [f"e{n}"],
        "detected_at": "2025-09-03T10:00:00+07:00",
        "params": {"rule": "ping_pong", "count": n},
        "position": n,
    }


def _alert(n: int) -> dict:
    return {
        "alert_id": output_id("alert", n),
        "kind": "deadline",
        "level": "due",
        "dossier_id": f"D{n}",
        "official_id": "A/CB01",
        "agency": "A",
        "procedure_code": "1.000001",
        "due_at": "2025-09-05T17:00:00+07:00",
        "fired_at": "2025-09-05T17:00:00+07:00",
        "recipients": ["official:A/CB01", "head:A"],
        "replayed": False,
        "params": {},
    }


def _metric(final: bool, received: int) -> dict:
    return {
        "day": "2025-09-03",
        "window": "day",
        "scope": "agency",
        "key": "A",
        "agency": "A",
        "received": received,
        "resolved_early": 1,
        "resolved_on_time": 0,
        "resolved_late": 0,
        "open_within": 2,
        "open_overdue": 0,
        "on_time_rate": 1.0,
        "late_events": 0,
        "final": final,
    }


def test_sink_loads_events_signals_alerts_and_metrics_idempotently(
    fresh_kafka: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    ledger = open_ledger(Settings.from_env(data))
    ledger.append_batch(event_stream(10, seed=4))
    ensure_topics(fresh_kafka)
    relay = Relay(ledger, make_producer(fresh_kafka, linger_ms=5))
    relay.drain()
    relay.producer.close()
    producer = make_producer(fresh_kafka)
    for _ in range(2):  # every output twice: at-least-once at its worst
        for n in range(5):
            producer.send(topics.SIGNALS, key=f"D{n}".encode(), value=orjson.dumps(_signal(n)))
            producer.send(topics.ALERTS, key=f"D{n}".encode(), value=orjson.dumps(_alert(n)))
    producer.send(topics.METRICS, key=b"A", value=orjson.dumps(_metric(False, 3)))
    producer.flush()
    producer.send(topics.METRICS, key=b"A", value=orjson.dumps(_metric(True, 4)))
    producer.flush()
    producer.close()

    db = tmp_path / "a.duckdb"
    args = ["sink", "--source", "kafka", "--bootstrap", fresh_kafka, "--db", str(db)]
    args += ["--once", "--idle", "1.5", "--data-dir", str(data)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert report["outputs"] == 22 and report["loaded"] == ledger.status()["events"]

    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute(
            "SELECT count(*), count(DISTINCT signal_id) FROM signals"
        ).fetchall() == [(5, 5)]
        assert con.execute(
            "SELECT count(*), min(recipients->>'$[1]'), bool_or(replayed) FROM alerts"
        ).fetchall() == [(5, "head:A", False)]
        assert con.execute("SELECT received, final, typeof(day) FROM metrics_daily").fetchall() == [
            (4, True, "DATE")
        ]  # the final row replaced the provisional one
        (dossiers,) = con.execute("SELECT count(*) FROM dossiers").fetchall()[0]
        assert dossiers == ledger.status()["dossiers"]
        assert con.execute(
            "SELECT params->>'$.count' FROM signals WHERE dossier_id = 'D3'"
        ).fetchall() == [("3",)]
    finally:
        con.close()
