"""``dossier demo``: seconds per stage, beside a baseline measured in the same run.

What is measured (``--json`` prints the figures as one JSON object on the last line):

* ``<stage>_s`` for each stage of ``system.demo.run_demo`` on a fresh data directory
  (simulate, ingest, verify, project, process, report), and ``total_s``;
* ``events``, ``dossiers``, ``events_per_s`` (events / total seconds);
* baseline: ``raw_read_s``, the seconds to read and decode the whole log once
  (``DossierLedger.iter_all``) on the same data, and ``total_vs_raw_read``;
* ``target_s``: 60 (the issue's target for ``--days 90`` on 2 cores).

Usage: python bench/demo.py [--quick] [--json] [--days N] [--seed S]
(``--quick``: 5 days.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where a bench named like a package
# (bench/streams.py) would shadow it: import the project from the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    days = args.days or (5 if args.quick else 90)
    os.environ.setdefault("DOSSIER_PROGRESS", "off")

    from ledger.bootstrap import open_ledger
    from ledger.settings import Settings
    from system.demo import run_demo

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(Path(tmp) / "data")
        say = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
        summary = run_demo(settings, days, args.seed, echo=say)
        ledger = open_ledger(settings)
        t = time.perf_counter()
        n = sum(1 for _ in ledger.iter_all())
        raw = time.perf_counter() - t
    total = summary["total_seconds"]
    figures = {
        "days": days,
        "events": summary["events"],
        "dossiers": summary["dossiers"],
        **{f"{k}_s": v for k, v in summary["seconds"].items()},
        "total_s": total,
        "events_per_s": round(summary["events"] / total) if total else 0,
        "raw_read_s": round(raw, 3),
        "raw_read_events": n,
        "total_vs_raw_read": round(total / raw, 1) if raw else None,
        "target_s": 60,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:<20}{v}")


if __name__ == "__main__":
    main()
