"""The relay crash run, larger: SIGKILL the relay at many random moments while the ledger ingests.

Prints how many kill points were tried and whether the topic holds every ledger
event in ledger order per dossier, with no gap and no duplicate after dedupe by
position (``--json``: one JSON object on the last line). Exit status 1 if not.

Usage: python bench/relay_crash.py [--quick] [--json] [--kills N] [--dossiers N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from ledger.kafka import ensure_topics
from simulator.factories import event_stream
from system.harness.crash import run_crash_scenario
from system.harness.tansu import running_tansu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (< 30 s)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--kills", type=int, default=None)
    parser.add_argument("--dossiers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: Tansu)")
    args = parser.parse_args()
    kills = args.kills or (12 if args.quick else 40)
    dossiers = args.dossiers or (600 if args.quick else 3000)

    with tempfile.TemporaryDirectory() as tmp:
        broker = nullcontext(args.bootstrap) if args.bootstrap else running_tansu()
        with broker as bootstrap:
            ensure_topics(bootstrap)
            result = run_crash_scenario(
                bootstrap,
                Path(tmp) / "data",
                event_stream(dossiers, seed=args.seed),
                kills=kills,
                seed=args.seed,
                log=not args.json,
            )
    figures = result.as_dict()
    print(
        f"{result.kill_points} kill points tried ({result.kills_with_lag} with events pending); "
        f"{result.events} events, {result.records_on_topic} records on the topic, "
        f"{result.duplicates} duplicates removed by position, {result.missing} missing, "
        f"{result.out_of_order_dossiers} dossiers out of order: {'OK' if result.ok else 'FAILED'}",
        file=sys.stderr,
    )
    print(json.dumps(figures))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
