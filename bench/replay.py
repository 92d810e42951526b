"""Replay throughput: a full rebuild of the read models from the SQLite store, beside the raw
rate of reading the store's notification log in the same run.

What is measured (``--json`` prints the figures as one JSON object on the last line):

* ``raw_read_events_per_s``: ``DossierLedger.iter_all`` over the whole log in one process
  (SQL read and JSON decode of every event, nothing else; cyclic GC off), best of three:
  the baseline;
* ``replay_events_per_s``: events / wall time of ``projections.runner.rebuild(ledger,
  projector, workers=W)``, best of two: the whole rebuild, from the call to its return:
  cutting the dossiers into ranges, ``W`` forked workers (default: the usable CPUs) each
  reading its ranges on its own connection, folding every event, deriving each dossier's
  state, deadlines and control-sheet rows; the parent dropping and recreating every
  read-model table and inserting the rows, tracking and workload in one transaction, and
  the commit (with its WAL checkpoint);
* ``replay_vs_raw_read``: replay rate / raw read rate, the fold's cost as a ratio to the
  raw read (1.0: folding, deriving and writing cost nothing beyond reading; above 1.0 is
  possible with several workers, which read in parallel);
* ``read_and_fold_events_per_s``: events / process-seconds spent reading and folding,
  summed over the workers (a per-process rate);
* ``derive_and_write_s``: process-seconds deriving rows (summed over the workers) plus
  the parent's seconds in the database (drop, inserts, workload, commit);
* ``workers``: processes used; ``checksum_stable``: both rebuilds gave byte-identical
  read models.

Events come from the province simulator (``--days``, default 40; 6 with ``--quick``),
ingested into a fresh store before anything is timed.

Usage: python bench/replay.py [--quick] [--json] [--days N] [--seed S] [--workers W]
"""

from __future__ import annotations

import os
import sys

# This folder holds bench/streams.py, named like the package projections.store imports:
# keep the folder off the import path (as bench/streams.py does).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

from ledger.bootstrap import open_ledger
from ledger.gc_pause import paused_gc
from ledger.ingest import ingest_lines
from ledger.settings import Settings
from projections.runner import Projector, rebuild
from projections.store import SQLiteReadModels
from simulator import simulate


def raw_read_rate(ledger: object) -> tuple[float, int]:
    """Events/s of reading and decoding the notification log (cyclic GC off, as in rebuild)."""
    with paused_gc():
        start = time.perf_counter()
        n = sum(1 for _ in ledger.iter_all())  # type: ignore[attr-defined]
        return n / (time.perf_counter() - start), n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (< 30 s)")
    parser.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    parser.add_argument("--days", type=int, default=None, help="simulated days (default 6 / 40)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=None, help="rebuild worker processes (default: usable CPUs)"
    )
    args = parser.parse_args()
    days = args.days or (6 if args.quick else 40)

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        text = io.StringIO()
        simulate(days, args.seed, text, None)
        ledger = open_ledger(Settings.from_env(Path(tmp) / "data"))
        report = ingest_lines(ledger, io.StringIO(text.getvalue()), source="simulated")
        del text  # the simulated input (~60 MB): forked rebuild workers need not inherit it
        if report.rejected:
            sys.exit(f"simulated events were rejected: {report.rejected}")
        raw, events = max(raw_read_rate(ledger) for _ in range(3))
        store = SQLiteReadModels(Path(tmp) / "readmodels.sqlite3")
        projector = Projector(store, ledger.rules)
        runs, checksums = [], []
        for _ in range(2):
            runs.append(rebuild(ledger, projector, workers=args.workers))
            checksums.append(store.checksum())
        best = min(runs, key=lambda r: r.total_seconds)
        figures = {
            "events": events,
            "dossiers": best.dossiers,
            "days": days,
            "raw_read_events_per_s": round(raw),
            "replay_events_per_s": round(best.events / best.total_seconds),
            "replay_vs_raw_read": round(best.events / best.total_seconds / raw, 3),
            "read_and_fold_events_per_s": round(best.events / best.read_seconds),
            "derive_and_write_s": round(best.derive_seconds + best.write_seconds, 3),
            "replay_s": round(best.total_seconds, 3),
            "workers": best.workers,
            "checksum_stable": checksums[0] == checksums[1],
        }
        store.close()
        ledger.close()
        ledger.keys.close()

    if not args.json:
        for key, value in figures.items():
            print(f"{key:<28}{value}")
    print(json.dumps(figures, sort_keys=True) if args.json else "")


if __name__ == "__main__":
    main()
