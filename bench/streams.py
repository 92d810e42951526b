"""Stream processing throughput and alert latency, beside the projection rebuild.

What is measured (``--json`` prints the figures as one JSON object on the last line):

* ``replay_events_per_s``: the baseline: events / wall time of a full rebuild of the read
  models (``projections.runner.rebuild``) in the same run, on the same store;
* ``embedded_events_per_s``: events / wall time of ``dossier process`` (the Python entry
  point :func:`streams.embedded.process`) from an empty ``analytics.duckdb``: reading the
  log, the stream processors, the analysts' tables, one DuckDB transaction per page;
  ``embedded_vs_replay``: its ratio to the baseline;
* ``processors_events_per_s``: the processors alone (:class:`streams.pipeline.Pipeline`
  fed the log already in memory: no reading, no writing);
* ``worker_events_per_s``: one ``dossier worker`` (faust) on a Tansu broker: events /
  seconds between its first and its last output record (broker timestamps), the
  consumer-group join left out;
* ``alert_p50_ms``, ``alert_p99_ms``: ``dossier process --follow`` running, a dossier
  whose deadline has long passed is appended; the time from the append's commit to its
  ``due`` alert reaching a webhook subscriber.

Usage: python bench/streams.py [--quick] [--json] [--days N] [--seed S] [--no-worker]
"""

from __future__ import annotations

import os
import sys

# This file is named like the package it measures: keep its folder off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import io
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ledger.bootstrap import open_ledger, open_rules
from ledger.domain.catalog import load_catalog
from ledger.ingest import ingest_lines
from ledger.settings import Settings
from projections.runner import Projector, rebuild
from projections.store import SQLiteReadModels
from simulator import simulate
from streams.pipeline import Pipeline
from system.harness.tansu import free_port, start_tansu, stop_process, tansu_binary
from system.process import process

CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def build(data: Path, days: int, seed: int) -> int:
    out = io.StringIO()
    simulate(days, seed, out)
    led = open_ledger(Settings.from_env(data))
    try:
        report = ingest_lines(led, out.getvalue().encode().splitlines(keepends=True), source="sim")
        return report.stored
    finally:
        led.close()
        led.keys.close()


def replay_rate(settings: Settings, tmp: Path) -> float:
    led = open_ledger(settings)
    store = SQLiteReadModels(tmp / "rm.sqlite3")
    try:
        start = time.perf_counter()
        report = rebuild(led, Projector(store, led.rules))
        return report.events / (time.perf_counter() - start)
    finally:
        store.close()
        led.close()
        led.keys.close()


def processors_rate(settings: Settings) -> float:
    rules = open_rules(settings)
    led = open_ledger(settings, rules=rules)
    try:
        records = list(led.iter_all())
    finally:
        led.close()
        led.keys.close()
    pipeline = Pipeline(rules, catalog=load_catalog())
    reference = datetime.now(UTC)
    start = time.perf_counter()
    for i, rec in enumerate(records, 1):
        pipeline.feed(rec, reference)
        if i % 5000 == 0:
            pipeline.take(provisional=False)
    pipeline.take()
    return len(records) / (time.perf_counter() - start)


def worker_rate(data: Path, events: int, tmp: Path) -> float | None:
    binary = tansu_binary()
    if binary is None:
        return None
    from kafka import KafkaConsumer

    proc, bootstrap = start_tansu(binary)
    env = {**os.environ, "DOSSIER_KAFKA_BOOTSTRAP": bootstrap, "DOSSIER_PROGRESS": "off"}
    env["DOSSIER_KAFKA_PARTITIONS"] = "4"
    worker = None
    try:
        for args in (("kafka", "init", "--partitions", "4"), ("relay", "--once")):
            subprocess.run(
                [*CLI, *args, "--data-dir", str(data)], env=env, check=True, capture_output=True
            )
        app_id = f"bench-{uuid.uuid4().hex[:8]}"
        worker = subprocess.Popen(
            [*CLI, "worker", "--app-id", app_id, "--data-dir", str(data)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "worker.log", "wb"),  # noqa: SIM115
        )
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=1000
        )
        consumer.subscribe(["dossier.signals", "dossier.alerts", "dossier.metrics"])
        first = last = None
        quiet_since = time.monotonic()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            got = False
            for msg in consumer:
                got = True
                ts = msg.timestamp / 1000
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
            if got:
                quiet_since = time.monotonic()
            elif first is not None and time.monotonic() - quiet_since > 10:
                break
        consumer.close()
        if first is None or last is None or last <= first:
            return None
        return events / (last - first)
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        stop_process(proc)


def alert_latency(data: Path, samples: int) -> tuple[float, float]:
    """p50, p99 in ms from an append's commit to its due alert at a webhook."""
    port = free_port()
    arrived: dict[str, float] = {}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrived.setdefault(body["data"]["dossier_id"], time.perf_counter())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    subs = data / "subscriptions.toml"
    subs.write_text(
        f'[[subscriber]]\nid = "bench"\nlevels = ["due"]\nreplayed = true\n'
        f'[subscriber.delivery]\nwebhook = "http://127.0.0.1:{port}/"\n',
        encoding="utf-8",
    )
    settings = Settings.from_env(data)
    stop = threading.Event()
    runner = threading.Thread(
        target=process,
        kwargs={"settings": settings, "follow": True, "stop": stop, "poll": 0.02},
        daemon=True,
    )
    committed: dict[str, float] = {}
    led = open_ledger(settings)
    try:
        runner.start()
        time.sleep(3.0)  # caught up with the log
        past = datetime.now(UTC) - timedelta(days=60)
        for i in range(samples):
            did = f"BENCH-{uuid.uuid4().hex[:10]}"
            env = _receipt(did, past + timedelta(minutes=i))
            led.append(env)
            committed[did] = time.perf_counter()
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(arrived) < samples:
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(timeout=60)
        server.shutdown()
        led.close()
        led.keys.close()
    latencies = sorted((arrived[d] - committed[d]) * 1000 for d in committed if d in arrived)
    if not latencies:
        return float("nan"), float("nan")
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    return statistics.median(latencies), p99


def _receipt(did: str, at: datetime) -> dict[str, Any]:
    local = at.astimezone()
    return {
        "event_id": str(uuid.uuid4()),
        "dossier_id": did,
        "type": "DossierReceived",
        "occurred_at": local.isoformat(timespec="seconds"),
        "recorded_at": local.isoformat(timespec="seconds"),
        "actor": {"id": "BENCH/CB01", "role": "receiver", "agency": "000.00.00.H99"},
        "data": {
            "procedure_code": "1.000001",
            "procedure_version": "1",
            "agency": "000.00.00.H99",
            "channel": "direct",
            "applicant": {
                "name": "Bench",
                "id_number": "001000000001",
                "phone": "0900000000",
                "address": "-",
            },
            "documents": [],
            "processing_time": {"value": 3, "unit": "working_days"},
        },
        "schema_version": 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small province (under 30 s)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-worker", action="store_true", help="skip the faust worker figure")
    args = parser.parse_args()
    days = args.days or (5 if args.quick else 40)
    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    try:
        data = tmp / "data"
        events = build(data, days, args.seed)
        settings = Settings.from_env(data)
        figures: dict[str, Any] = {"events": events, "days": days}
        figures["replay_events_per_s"] = round(replay_rate(settings, tmp))
        start = time.perf_counter()
        process(settings)
        figures["embedded_events_per_s"] = round(events / (time.perf_counter() - start))
        figures["embedded_vs_replay"] = round(
            figures["embedded_events_per_s"] / figures["replay_events_per_s"], 3
        )
        figures["processors_events_per_s"] = round(processors_rate(settings))
        if not args.no_worker and not args.quick:
            rate = worker_rate(data, events, tmp)
            figures["worker_events_per_s"] = None if rate is None else round(rate)
        p50, p99 = alert_latency(data, 10 if args.quick else 40)
        figures["alert_p50_ms"] = round(p50, 1)
        figures["alert_p99_ms"] = round(p99, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.json:
        for k, v in figures.items():
            print(f"{k:>26}: {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
