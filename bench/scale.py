"""Province scale: every command on a log of N events and of N/4, each in a fresh process.

A province is simulated (``dossier simulate --dossiers-per-day R --days 365``, R
chosen so that a year gives about N events); the large log is its first N lines,
the small one its first N/4 (the same province, a quarter of the time). On each
log, in a fresh data directory, each command runs in its own process:

``ingest``, ``verify --all``, ``digest``, ``project --once`` (the read models from
nothing), ``rebuild`` (drop them, fold the log again), ``sink --source store
--once``, ``process`` (the stream processors), ``report --period`` (HTML),
``export --xes`` and ``import`` of that XES log into another fresh directory.

Per command and size: seconds, events/s and peak RSS (``ru_maxrss`` of the child,
from ``os.wait4``). The baseline is the small run of the same command:

* ``memory_growth_ratio``: the largest peak-RSS ratio large/small over all
  commands (target <= 1.3: memory flat in the log's length);
* ``time_growth_ratio``: the largest events/s ratio small/large (target <= 1.3:
  time linear in the log's length).

``--distributed`` instead runs the distributed path (4 writers, relay, 2
projection workers, 2 stream workers on PostgreSQL and a Tansu broker) on N
events: see ``bench/scale_distributed.py``.

Usage: python bench/scale.py [--quick] [--json] [--events N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EVENTS_PER_UNIT_DAY = 7.17
"""Events a day per unit of ``--dossiers-per-day`` (measured: 30 days at 300/day,
64,488 events incl. the dossiers' tails), to size a year to N events."""
START, YEAR = "2026-01-01", "2026"
DOSSIER = str(Path(sys.executable).with_name("dossier"))


def run(args: list[str], data_dir: Path | None, log: Path) -> dict[str, Any]:
    """Run ``dossier ARGS`` in a fresh process; its seconds, peak RSS and exit code."""
    env = dict(os.environ, DOSSIER_PROGRESS="off")
    env.pop("DOSSIER_STORE", None)
    if data_dir is not None:
        env["DOSSIER_DATA_DIR"] = str(data_dir)
    with log.open("ab") as out:
        out.write(("$ dossier " + " ".join(args) + "\n").encode())
        out.flush()
        started = time.perf_counter()
        proc = subprocess.Popen([DOSSIER, *args], env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": proc.returncode,
    }


def head(src: Path, dst: Path, n: int) -> int:
    """The first ``n`` lines of ``src`` into ``dst``; how many were written."""
    count = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        for line in fin:
            if count >= n:
                break
            fout.write(line)
            count += 1
    return count


def commands(log: Path, work: Path) -> list[tuple[str, list[str], Path]]:
    """(name, arguments, data dir) of every command, in the order they run."""
    data, imported = work / "data", work / "imported"
    mapping = work / "mapping.toml"
    return [
        ("ingest", ["ingest", str(log), "--rejects", str(work / "rejects.jsonl")], data),
        ("verify --all", ["verify", "--all"], data),
        ("digest", ["digest", "--out", str(work / "digest.json")], data),
        ("project --once", ["project", "--once"], data),
        ("rebuild", ["rebuild"], data),
        ("sink --source store --once", ["sink", "--source", "store", "--once"], data),
        ("process", ["process"], data),
        (
            "report",
            ["report", "--period", YEAR, "--format", "html", "--out", str(work / "r.html")],
            data,
        ),
        ("export --xes", ["export", "--xes", str(work / "log.xes")], data),
        ("import", ["import", str(work / "log.xes"), "--mapping", str(mapping)], imported),
    ]


def measure(log: Path, events: int, work: Path, out_log: Path) -> dict[str, dict[str, Any]]:
    from ledger.eventlog.export import ledger_mapping

    work.mkdir(parents=True)
    (work / "mapping.toml").write_text(ledger_mapping("xes"), encoding="utf-8")
    figures: dict[str, dict[str, Any]] = {}
    for name, args, data_dir in commands(log, work):
        fig = run(args, data_dir, out_log)
        fig["events_per_s"] = round(events / fig["seconds"]) if fig["seconds"] else None
        figures[name] = fig
        print(
            f"  {name:28} {fig['seconds']:8.1f} s {fig['events_per_s'] or 0:>9,} ev/s "
            f"{fig['peak_rss_mb']:8.1f} MB" + (f"  exit {fig['exit']}" if fig["exit"] else ""),
            flush=True,
        )
    figures["data_dir_mb"] = {"size": round(du(work / "data") / 2**20, 1)}  # type: ignore[dict-item]
    return figures


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small run (< 30 s on a quiet machine)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures last")
    parser.add_argument(
        "--events", type=int, default=None, help="N (default 1,000,000; quick 16,000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    parser.add_argument(
        "--distributed", action="store_true", help="the distributed path instead (see docstring)"
    )
    args = parser.parse_args()
    n = args.events or (16_000 if args.quick else 1_000_000)
    if args.distributed:
        here = Path(__file__).with_name("scale_distributed.py")
        cmd = [sys.executable, str(here), "--events", str(n)] + (["--json"] if args.json else [])
        raise SystemExit(subprocess.call(cmd))

    root = args.keep or Path(tempfile.mkdtemp(prefix="scale-"))
    root.mkdir(parents=True, exist_ok=True)
    out_log = root / "commands.log"
    try:
        # A year of a province sized to ~N events, 10 % spare; cut to N and N/4 lines.
        rate = round(n * 1.1 / (365 * EVENTS_PER_UNIT_DAY), 2)
        full = root / "simulated.jsonl"
        print(f"simulate: {rate} dossiers a working day, 365 days from {START}", flush=True)
        sim = run(
            [
                "simulate",
                "--days",
                "365",
                "--seed",
                str(args.seed),
                "--start",
                START,
                "--dossiers-per-day",
                str(rate),
                "--out",
                str(full),
            ],
            None,
            out_log,
        )
        total = sum(1 for _ in full.open("rb"))
        sim["events_per_s"] = round(total / sim["seconds"])
        print(f"  {total:,} events in {sim['seconds']} s, {sim['peak_rss_mb']} MB", flush=True)
        sizes = {}
        for label, want in (("small", n // 4), ("large", n)):
            log = root / f"{label}.jsonl"
            events = head(full, log, want)
            print(f"{label}: {events:,} events", flush=True)
            sizes[label] = {"events": events, **measure(log, events, root / label, out_log)}
        small, large = sizes["small"], sizes["large"]
        names = [k for k in large if isinstance(large[k], dict) and "seconds" in large[k]]
        mem = {k: large[k]["peak_rss_mb"] / small[k]["peak_rss_mb"] for k in names}
        tim = {
            k: small[k]["events_per_s"] / large[k]["events_per_s"]
            for k in names
            if small[k]["events_per_s"] and large[k]["events_per_s"]
        }
        worst_mem, worst_time = max(mem, key=mem.get), max(tim, key=tim.get)  # type: ignore[arg-type]
        result = {
            "events": n,
            "events_small": small["events"],
            "events_large": large["events"],
            "dossiers_per_day": rate,
            "simulate": sim,
            "small": small,
            "large": large,
            "memory_growth_by_command": {k: round(v, 3) for k, v in mem.items()},
            "time_growth_by_command": {k: round(v, 3) for k, v in tim.items()},
            "memory_growth_ratio": round(mem[worst_mem], 3),
            "memory_growth_worst": worst_mem,
            "time_growth_ratio": round(tim[worst_time], 3),
            "time_growth_worst": worst_time,
            "failed": sorted(
                f"{size}:{k}" for size, figs in sizes.items() for k in names if figs[k]["exit"]
            ),
        }
        print(
            f"memory_growth_ratio {result['memory_growth_ratio']} ({worst_mem}), "
            f"time_growth_ratio {result['time_growth_ratio']} ({worst_time}); "
            f"target <= 1.3 each; commands log: {out_log if args.keep else '(removed)'}"
        )
        if args.json:
            print(json.dumps(result, sort_keys=True))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
