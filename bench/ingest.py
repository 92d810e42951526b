"""Ingest throughput on SQLite, beside the raw eventsourcing baseline of the same run.

Figures (``--json`` prints them as one JSON object on the last line):

* ``bulk_events_per_s``: ``ingest_lines`` of simulated JSON Lines (parse,
  validate, check, seal applicant, hash-chain, store with the event index);
* ``single_events_per_s``: ``DossierLedger.append`` one event per transaction;
* ``baseline_batched_events_per_s`` / ``baseline_single_events_per_s``: a plain
  eventsourcing ``Application`` saving equivalent aggregates (same envelopes,
  same batch sizes, library defaults) with no validation, hashing or index;
* ``bulk_vs_baseline`` / ``single_vs_baseline``: the ledger's rate as a
  fraction of the baseline's.

Usage: python bench/ingest.py [--quick] [--json] [--days N]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from ledger.bootstrap import open_ledger
from ledger.ingest import BATCH_SIZE, ingest_lines
from ledger.settings import Settings
from simulator import simulate


class RawDossier(Aggregate):
    """The baseline's aggregate: one event class carrying the envelope, no rules."""

    class Opened(Aggregate.Created):
        envelope: dict[str, Any]

    class Recorded(Aggregate.Event):
        envelope: dict[str, Any]

    def __init__(self, envelope: dict[str, Any]) -> None:
        self.n = 1

    def record(self, envelope: dict[str, Any]) -> None:
        self.trigger_event(RawDossier.Recorded, envelope=envelope)


class RawApp(Application):
    pass


def baseline(envelopes: list[dict[str, Any]], db: Path, batch: int, *, warm: int = 0) -> float:
    """Events/s of the plain library saving the same events in the same batches.

    The first ``warm`` events are saved untimed in large batches, so that single
    saves are timed against a store that already holds the dossiers' history.
    """
    app = RawApp({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
    aggs: dict[str, RawDossier] = {}

    def save(chunk: list[dict[str, Any]]) -> None:
        touched: dict[str, RawDossier] = {}
        for env in chunk:
            agg = aggs.get(env["dossier_id"])
            if agg is None:
                agg = aggs[env["dossier_id"]] = RawDossier(envelope=env)
            else:
                agg.record(env)
            touched[env["dossier_id"]] = agg
        app.save(*touched.values())

    for i in range(0, warm, BATCH_SIZE):
        save(envelopes[i : min(i + BATCH_SIZE, warm)])
    start = time.perf_counter()
    for i in range(warm, len(envelopes), batch):
        save(envelopes[i : i + batch])
    return (len(envelopes) - warm) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (< 30 s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures last")
    parser.add_argument(
        "--days", type=int, default=None, help="simulated days (default 30, quick 14)"
    )
    parser.add_argument("--single", type=int, default=None, help="single appends to time")
    args = parser.parse_args()
    days = args.days or (14 if args.quick else 30)
    n_single = args.single or (1000 if args.quick else 5000)

    buf = io.StringIO()
    simulate(days, 1, buf)
    lines = buf.getvalue().splitlines()
    envelopes = [orjson.loads(line) for line in lines]

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        base_bulk = baseline(envelopes, tmp_path / "base-bulk.sqlite3", BATCH_SIZE)
        # Single appends are timed in the middle of the stream (the first half
        # already stored), the mix of event types a running ledger sees.
        warm = len(envelopes) // 2
        single_slice = envelopes[: warm + n_single]
        base_single = baseline(single_slice, tmp_path / "base-single.sqlite3", 1, warm=warm)

        ledger = open_ledger(Settings.from_env(tmp_path / "bulk"))
        start = time.perf_counter()
        report = ingest_lines(ledger, lines, source="bench")
        bulk = report.read / (time.perf_counter() - start)
        assert report.rejected == 0, report.errors[:3]

        single_ledger = open_ledger(Settings.from_env(tmp_path / "single"))
        ingest_lines(single_ledger, lines[:warm], source="bench-warm")
        start = time.perf_counter()
        for env in single_slice[warm:]:
            single_ledger.append(env)
        single = n_single / (time.perf_counter() - start)

    figures = {
        "events": len(envelopes),
        "single_events": n_single,
        "bulk_events_per_s": round(bulk),
        "single_events_per_s": round(single),
        "baseline_batched_events_per_s": round(base_bulk),
        "baseline_single_events_per_s": round(base_single),
        "bulk_vs_baseline": round(bulk / base_bulk, 3),
        "single_vs_baseline": round(single / base_single, 3),
    }
    if not args.json:
        print(f"events ingested           {len(envelopes):>10}")
        print(
            f"bulk ingest               {bulk:>10.0f} events/s  ({bulk / base_bulk:.2f}x baseline)"
        )
        print(
            f"single appends            {single:>10.0f} events/s  ({single / base_single:.2f}x baseline)"
        )
        print(f"baseline batched          {base_bulk:>10.0f} events/s")
        print(f"baseline single           {base_single:>10.0f} events/s")
    print(json.dumps(figures) if args.json else "", file=sys.stdout)


if __name__ == "__main__":
    main()
