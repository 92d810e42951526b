"""``dossier serve``: latency of a dossier page with the demo's data, beside baselines
measured in the same run.

What is measured (``--json`` prints the figures as one JSON object on the last line):

* ``page_p50_ms`` / ``page_p95_ms``: ``GET /dossiers/CODE`` over HTTP (uvicorn in a thread
  of this process, one keep-alive client, requests one after another) for ``--requests``
  codes drawn at random from the ledger: the ledger read, the chain verified, the
  folds (state at the stream's now, audit trail, control sheet), the dossier's alerts and
  signals from ``analytics.duckdb`` (when present) and the HTML template;
* ``api_p95_ms``: the same dossier as JSON (``/api/dossiers/CODE``);
* ``folds_p95_ms``: baseline 1, no HTTP: ``Site.dossier(code)`` called directly;
* ``static_p95_ms``: baseline 2, the HTTP floor: ``GET /static/site.css`` on the same server;
* ``page_vs_folds``: page p95 / folds p95 (what HTTP and the template add);
* ``dossiers``, ``events``: size of the data.

Data: ``--data-dir DIR`` (e.g. what ``dossier demo`` wrote), else a province simulated for
``--days`` (default 90, the demo's size; 10 with ``--quick``), ingested and projected into a
temporary directory before anything is timed.

Usage: python bench/serve.py [--quick] [--json] [--data-dir DIR] [--days N] [--requests N]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where a bench named like a package
# (bench/streams.py) would shadow it: import the project from the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from ledger.settings import Settings  # noqa: E402


def build(data_dir: Path, days: int, seed: int) -> None:
    from ledger.bootstrap import open_ledger
    from ledger.ingest import ingest_lines
    from projections.runner import Projector, rebuild
    from projections.store import open_store
    from simulator import simulate

    settings = Settings.from_env(data_dir)
    out = io.StringIO()
    simulate(days, seed, out, None)
    ledger = open_ledger(settings)
    ingest_lines(ledger, io.StringIO(out.getvalue()))
    store = open_store(settings)
    try:
        rebuild(ledger, Projector(store, ledger.rules))
    finally:
        store.close()


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 20 else max(xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args()
    days = args.days or (10 if args.quick else 90)
    n = args.requests or (100 if args.quick else 400)

    import httpx

    from web.server import serving
    from web.site import Site

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            t = time.perf_counter()
            build(data_dir, days, args.seed)
            if not args.json:
                print(
                    f"built {days} days of data in {time.perf_counter() - t:.1f} s", file=sys.stderr
                )
        settings = Settings.from_env(data_dir)
        site = Site(settings)
        status = site.ledger.status()
        rng = random.Random(args.seed)
        q = site._read_models()
        assert q is not None, "no read models: run dossier project or rebuild first"
        codes = [r[0] for r in q("SELECT dossier_id FROM rm_dossiers", ())]
        sample = [rng.choice(codes) for _ in range(n)]
        site.warm()  # as dossier serve does before its first visitor
        it = iter(sample * 2)
        folds = timed(lambda: site.dossier(next(it)), n)
        with serving(settings) as base, httpx.Client(base_url=base, timeout=30) as client:
            for path in ("/static/site.css", f"/dossiers/{sample[0]}"):  # warm both
                client.get(path).raise_for_status()
            pages = iter(sample)
            page = timed(lambda: client.get(f"/dossiers/{next(pages)}").raise_for_status(), n)
            apis = iter(sample)
            api = timed(lambda: client.get(f"/api/dossiers/{next(apis)}").raise_for_status(), n)
            static = timed(lambda: client.get("/static/site.css").raise_for_status(), n)
        site.close()
    figures = {
        "dossiers": status["dossiers"],
        "events": status["events"],
        "requests": n,
        "page_p50_ms": round(statistics.median(page), 2),
        "page_p95_ms": round(p95(page), 2),
        "api_p95_ms": round(p95(api), 2),
        "folds_p95_ms": round(p95(folds), 2),
        "static_p95_ms": round(p95(static), 2),
        "page_vs_folds": round(p95(page) / p95(folds), 2),
        "target_p95_ms": 100,
    }
    if not args.json:
        for k, v in figures.items():
            print(f"{k:<16}{v}")
    else:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
