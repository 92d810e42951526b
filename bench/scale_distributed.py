"""The distributed path on N events (default 1,000,000): 4 writers, relay, 2 projection
workers, 2 stream workers on one PostgreSQL and one Tansu broker, all at once.

The scenario and its checks (nothing lost or reordered per dossier: store, topic,
read models, stream outputs) are ``system.harness.distributed.run``; the test suite
runs it small (``tests/integration/test_scale_distributed.py``). Figures: seconds
from the writers' start until the writers are done (``ingest_s``), until every
event was read back from ``dossier.events`` (``relayed_s``), until the read models
hold every dossier's last position (``projected_s``) and until the stream workers'
final daily counts add up (``streamed_s``); the baseline is the writers' own rate
(``ingest_events_per_s``) beside ``end_to_end_events_per_s``.

PostgreSQL: ``DOSSIER_TEST_PG`` (default postgresql://postgres@127.0.0.1:5432/test);
a fresh schema is made and dropped.

Usage: python bench/scale_distributed.py [--quick] [--json] [--events N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where bench/streams.py would
# shadow the streams package: drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from system.harness.distributed import run  # noqa: E402
from system.harness.tansu import running_tansu  # noqa: E402

PG = os.environ.get("DOSSIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (4,000 events)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures last")
    parser.add_argument("--events", type=int, default=None, help="N (default 1,000,000)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    n = args.events or (4_000 if args.quick else 1_000_000)

    import psycopg
    from psycopg.sql import SQL, Identifier

    schema = f"scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
    work = args.keep or Path(tempfile.mkdtemp(prefix="scale-dist-"))
    try:
        with running_tansu() as bootstrap:
            figures = run(
                work,
                events=n,
                pg_url=f"{PG}?schema={schema}",
                bootstrap=bootstrap,
                partitions=args.partitions,
                deadline=max(600.0, n / 50),
            )
        for key, value in figures.items():
            print(f"{key:28} {value}")
        if args.json:
            print(json.dumps(figures, sort_keys=True))
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
