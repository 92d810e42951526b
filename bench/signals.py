"""Detection quality of the misconduct signals: precision and recall per kind against the
simulator's labels, matched on (dossier_id, kind).

Two ways to produce the signals (``--engine``):

* ``process`` (the default when ``streams.embedded`` exists): the real pipeline, run as
  commands in a fresh data directory: ``dossier simulate --days N --seed S --out e.jsonl
  --labels l.jsonl``, ``dossier ingest e.jsonl``, ``dossier process``; the signals are
  read from the ``signals`` table of ``analytics.duckdb``.
* ``driver``: the detectors driven in-memory by :class:`streams.signals.drive.Driver`
  over the simulated envelopes (no store, no DuckDB): the same detectors, the same
  fold and view, for development before the processor exists and as its reference.

Printed per kind: labelled pairs, signalled pairs, true positives, precision, recall;
and the minimum precision and recall over kinds, beside the targets (0.95, 0.90).
Speed is not the point here; ``signals_per_s`` (driver only) is the detectors' rate
over the events, beside ``fold_events_per_s`` (the projection fold and view alone,
measured in the same run) as the baseline.

Usage: python bench/signals.py [--seed S] [--days N] [--quick] [--json] [--engine E]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

# bench/ holds a streams.py of its own: import the project's packages, not the scripts beside us
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from ledger.domain.signal_kinds import KINDS  # noqa: E402

TARGET_PRECISION = 0.95
TARGET_RECALL = 0.90


def score(truth: set[tuple[str, str]], found: set[tuple[str, str]]) -> dict[str, Any]:
    """Per kind: labelled, signalled, true positives, precision, recall (None when 0/0)."""
    by_kind: dict[str, Any] = {}
    for kind in KINDS:
        t = {d for d, k in truth if k == kind}
        f = {d for d, k in found if k == kind}
        tp = len(t & f)
        by_kind[kind] = {
            "labelled": len(t),
            "signalled": len(f),
            "true_positives": tp,
            "precision": round(tp / len(f), 4) if f else None,
            "recall": round(tp / len(t), 4) if t else None,
        }
    return by_kind


def read_labels(path: Path) -> set[tuple[str, str]]:
    out = set()
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.add((row["dossier_id"], row["kind"]))
    return out


def run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode not in (0,):
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def by_process(tmp: Path, days: int, seed: int) -> tuple[set[tuple[str, str]], dict[str, Any]]:
    import duckdb

    env = {**os.environ, "DOSSIER_DATA_DIR": str(tmp / "data")}
    env.pop("DOSSIER_STORE", None)
    events, labels = tmp / "e.jsonl", tmp / "l.jsonl"
    dossier = [str(Path(sys.executable).with_name("dossier"))]
    run([*dossier, "simulate", "--days", str(days), "--seed", str(seed), "--out", str(events),
         "--labels", str(labels)], env)  # fmt: skip
    run([*dossier, "ingest", str(events)], env)
    start = time.perf_counter()
    run([*dossier, "process"], env)
    took = time.perf_counter() - start
    con = duckdb.connect(str(tmp / "data" / "analytics.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT dossier_id, kind FROM signals WHERE dossier_id IS NOT NULL"
    ).fetchall()
    con.close()
    return {(d, k) for d, k in rows}, {"process_s": round(took, 2), "signals": len(rows)}


def by_driver(tmp: Path, days: int, seed: int) -> tuple[set[tuple[str, str]], dict[str, Any]]:
    from ledger.domain.catalog import load_catalog
    from ledger.domain.events import Recorded
    from ledger.domain.rules import load_rules
    from projections import state
    from simulator import simulate
    from streams.signals.drive import Driver

    events, labels = tmp / "e.jsonl", tmp / "l.jsonl"
    with events.open("w", encoding="utf-8") as out, labels.open("w", encoding="utf-8") as lab:
        simulate(days, seed, out, lab)
    rules, catalog = load_rules(), load_catalog()
    with events.open(encoding="utf-8") as f:
        records = [Recorded(i + 1, 0, json.loads(line)) for i, line in enumerate(f)]

    start = time.perf_counter()  # baseline: the fold and one view per event
    sheets: dict[str, dict[str, Any]] = defaultdict(dict)
    for rec in records:
        env = rec.envelope
        facts = state.evolve_into(sheets[env["dossier_id"]], rec.position, env)
        state.view(facts, rules)
    fold_s = time.perf_counter() - start

    start = time.perf_counter()
    driver = Driver(rules, catalog).run(records)
    took = time.perf_counter() - start
    found = {(s["dossier_id"], s["kind"]) for s in driver.signals if s["dossier_id"]}
    return found, {
        "events": len(records),
        "signals": len(driver.signals),
        "official_alerts": len(driver.alerts),
        "signals_per_s": round(len(records) / took),
        "fold_events_per_s": round(len(records) / fold_s),
        "driver_vs_fold": round(fold_s / took, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--days", type=int, default=None, help="simulated days (default 60; 3 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small run (< 30 s)")
    parser.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    has_runner = importlib.util.find_spec("streams.embedded") is not None
    parser.add_argument(
        "--engine", choices=("process", "driver"), default="process" if has_runner else "driver"
    )
    args = parser.parse_args()
    days = args.days or (3 if args.quick else 60)

    with tempfile.TemporaryDirectory(prefix="bench-signals-") as tmp:
        work = Path(tmp)
        produce = by_process if args.engine == "process" else by_driver
        found, extra = produce(work, days, args.seed)
        truth = read_labels(work / "l.jsonl")
    kinds = score(truth, found)
    precisions = [v["precision"] for v in kinds.values() if v["precision"] is not None]
    recalls = [v["recall"] for v in kinds.values() if v["recall"] is not None]
    figures = {
        "engine": args.engine,
        "seed": args.seed,
        "days": days,
        "labelled_pairs": len(truth),
        "signalled_pairs": len(found),
        "min_precision": min(precisions) if precisions else None,
        "min_recall": min(recalls) if recalls else None,
        "targets": {"precision": TARGET_PRECISION, "recall": TARGET_RECALL},
        **extra,
        "kinds": kinds,
    }
    print(f"engine {args.engine}, seed {args.seed}, {days} days")
    print(f"{'kind':32} {'labelled':>8} {'signalled':>9} {'tp':>6} {'precision':>9} {'recall':>7}")
    for kind, v in kinds.items():
        p = "-" if v["precision"] is None else f"{v['precision']:.3f}"
        r = "-" if v["recall"] is None else f"{v['recall']:.3f}"
        print(
            f"{kind:32} {v['labelled']:>8} {v['signalled']:>9} {v['true_positives']:>6} "
            f"{p:>9} {r:>7}"
        )
    print(
        f"min precision {figures['min_precision']} (target {TARGET_PRECISION}), "
        f"min recall {figures['min_recall']} (target {TARGET_RECALL})"
    )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
