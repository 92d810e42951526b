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

``--quick``: N = 40,000, two commands at a time, the analysts' writer held to
``QUICK_DUCKDB_MEMORY`` (see there and ``QUICK_EVENTS`` for why).

The province-year record (``--events 25000000``) takes hours; these flags make it
fit the time there is, and each is said in the figures:

* ``--only large``: the N run alone (the ratios come from the default run);
* ``--pipe``: ingest reads the simulator's output through a pipe
  (``simulate | head -n N | ingest -``), so the two overlap on two cores;
* ``--jobs K``: after ingest, up to K commands at once, in dependency order
  (``rebuild`` after ``project``, ``import`` after ``export``, ``report`` after
  ``sink`` and ``process``, which share the analysts' file and so never overlap);
* ``--commands a,b``: only these commands (by first word; ingest always).

Every command's figures (with the commit of the ``dossier`` measured) are appended
to ``DIR/figures.jsonl`` as it ends; with ``--keep DIR``, a second run skips the
commands already recorded there.

``--distributed`` instead runs the distributed path (4 writers, relay, 2
projection workers, 2 stream workers on PostgreSQL and a Tansu broker) on N
events: see ``bench/scale_distributed.py``.

Usage: python bench/scale.py [--quick] [--json] [--events N] [--keep DIR]
                             [--only small|large] [--pipe] [--jobs K] [--commands a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

EVENTS_PER_UNIT_DAY = 7.17
"""Events a day per unit of ``--dossiers-per-day`` (measured: 30 days at 300/day,
64,488 events incl. the dossiers' tails), to size a year to N events."""
START, YEAR = "2026-01-01", "2026"
QUICK_EVENTS = 40_000
"""``--quick``'s N. The small log (10,000 events) already fills the commands' pages
(the sink's 10,000 events, the processors' 5,000), so a growth seen from there is
growth, not a first page filling; at 4,000 → 16,000 the sink's peak grew 1.36x for
that reason alone. Two commands at a time keep it under 30 s."""
QUICK_DUCKDB_MEMORY = "64MB"
"""``--quick``'s limit for the analysts' writer (``DOSSIER_DUCKDB_MEMORY``, default
256MB): DuckDB keeps the blocks it touched up to its limit, which the default sizes
reach and the quick ones would not (process 259 → 306 MB at 10,000 → 40,000 events
with it, 1.31x without)."""
DOSSIER = str(Path(sys.executable).with_name("dossier"))


def run(args: list[str], data_dir: Path | None, log: Path) -> dict[str, Any]:
    """Run ``dossier ARGS`` in a fresh process; its seconds, peak RSS and exit code."""
    with log.open("ab") as out:
        out.write(("$ dossier " + " ".join(args) + "\n").encode())
        out.flush()
        commit = code_commit()  # now: the checkout may move on while a long run goes
        started = time.perf_counter()
        proc = subprocess.Popen([DOSSIER, *args], env=child_env(data_dir), stdout=out, stderr=out)
        return {**waited(proc, started), "commit": commit}


def child_env(data_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ, DOSSIER_PROGRESS="off")
    env.pop("DOSSIER_STORE", None)
    if data_dir is not None:
        env["DOSSIER_DATA_DIR"] = str(data_dir)
    return env


def waited(proc: subprocess.Popen, started: float) -> dict[str, Any]:
    """Wait for ``proc``: seconds since ``started``, its peak RSS (``wait4``), exit code."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": proc.returncode,
    }


def run_piped(
    simulate: list[str], n: int, ingest: list[str], data_dir: Path, log: Path
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """``simulate | head -n N | ingest -``: both figures and the events ingest read."""
    with log.open("ab") as out:
        out.write(
            ("$ dossier " + " ".join(simulate) + f" | head -n {n} | dossier ").encode()
            + " ".join(ingest).encode()
            + b"\n"
        )
        out.flush()
        commit = code_commit()
        started = time.perf_counter()
        sim = subprocess.Popen(
            [DOSSIER, *simulate], env=child_env(None), stdout=subprocess.PIPE, stderr=out
        )
        cut = subprocess.Popen(["head", "-n", str(n)], stdin=sim.stdout, stdout=subprocess.PIPE)
        ing = subprocess.Popen(
            [DOSSIER, *ingest],
            env=child_env(data_dir),
            stdin=cut.stdout,
            stdout=subprocess.PIPE,
            stderr=out,
        )
        sim.stdout.close()  # type: ignore[union-attr]  # head holds it: SIGPIPE reaches simulate
        cut.stdout.close()  # type: ignore[union-attr]
        summary = ing.stdout.read().decode()  # type: ignore[union-attr]
        out.write(summary.encode())
        fig_ingest = waited(ing, started)
        cut.wait()
        fig_sim = waited(sim, started)
    match = re.match(r"(\d+) read", summary)
    events = int(match.group(1)) if match else 0
    # head stops reading at N lines: simulate then ends on a broken pipe (click exits 1
    # on EPIPE), as meant.
    if events == n and fig_sim["exit"] in (1, -signal.SIGPIPE):
        fig_sim["exit"] = 0
    fig_sim["commit"] = fig_ingest["commit"] = commit
    return fig_sim, fig_ingest, events


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


SHARED_FILE = ("sink --source store --once", "process")
"""Both write the analysts' DuckDB file, which takes one writer: never at once."""
DEPENDS = {
    "rebuild": ("project --once",),
    "import": ("export --xes",),
    "report": SHARED_FILE,
}
LONGEST_FIRST = [
    "process",
    "sink --source store --once",
    "project --once",
    "export --xes",
    "import",
    "rebuild",
    "verify --all",
    "digest",
    "report",
]
"""With ``--jobs`` > 1, the order commands are taken in (the longest first)."""


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


class Record:
    """``figures.jsonl`` in the work directory: one line per command as it ends."""

    def __init__(self, path: Path, commit: str) -> None:
        self.path, self.commit = path, commit
        self.done: dict[tuple[str, str], dict[str, Any]] = {}
        self.failed: set[tuple[str, str]] = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if row["exit"] == 0:
                    self.done[(row["size"], row["command"])] = row
        self.lock = threading.Lock()

    def add(self, size: str, name: str, fig: dict[str, Any], events: int, **extra: Any) -> None:
        fig["events_per_s"] = round(events / fig["seconds"]) if fig["seconds"] else None
        row = {"size": size, "command": name, "commit": self.commit, **extra, **fig}
        # fig["commit"], when given, is the commit the command started on
        with self.lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row, sort_keys=True) + "\n")
        if fig["exit"]:
            self.failed.add((size, name))
        else:
            self.done[(size, name)] = row
        print(
            f"  {name:28} {fig['seconds']:8.1f} s {fig['events_per_s'] or 0:>9,} ev/s "
            f"{fig['peak_rss_mb']:8.1f} MB" + (f"  exit {fig['exit']}" if fig["exit"] else ""),
            flush=True,
        )


def measure(
    label: str,
    log: Path,
    events: int,
    work: Path,
    out_log: Path,
    record: Record,
    jobs: int,
    only: set[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every command (or those whose first word is in ``only``) on one log: ingest
    first, then up to ``jobs`` at once."""
    from interchange.export import ledger_mapping

    work.mkdir(parents=True, exist_ok=True)
    (work / "mapping.toml").write_text(ledger_mapping("xes"), encoding="utf-8")
    todo = {name: (args, data_dir) for name, args, data_dir in commands(log, work)}
    order = list(todo) if jobs == 1 else ["ingest", *LONGEST_FIRST]
    order = [c for c in order if only is None or c.split()[0] in only]
    running: set[str] = set()
    cond = threading.Condition()

    def ready(name: str) -> bool:
        done = {c for (size, c), row in record.done.items() if size == label}
        if name != "ingest" and "ingest" not in done:
            return False
        if name in SHARED_FILE and running & set(SHARED_FILE):
            return False
        return all(d in done for d in DEPENDS.get(name, ()))

    def lane() -> None:
        while True:
            with cond:
                while True:
                    left = [c for c in order if (label, c) not in record.done and c not in running]
                    if not left:
                        return
                    name = next((c for c in left if ready(c)), None)
                    if name is not None:
                        break
                    if not running:  # nothing can run and nothing will end: a failed parent
                        return
                    cond.wait()
                running.add(name)
            args, data_dir = todo[name]
            fig = run(args, data_dir, out_log)
            with cond:
                record.add(label, name, fig, events, jobs=jobs)
                running.discard(name)
                if fig["exit"]:
                    order.remove(name)  # failed: its dependants never run
                cond.notify_all()

    lanes = [threading.Thread(target=lane) for _ in range(jobs)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    figures = {c: record.done[(label, c)] for c in todo if (label, c) in record.done}
    figures["data_dir_mb"] = {"size": round(du(work / "data") / 2**20, 1)}
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
        "--events", type=int, default=None, help="N (default 1,000,000; quick 40,000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    parser.add_argument(
        "--distributed", action="store_true", help="the distributed path instead (see docstring)"
    )
    parser.add_argument(
        "--only", choices=["small", "large"], default=None, help="one of the two sizes"
    )
    parser.add_argument(
        "--pipe", action="store_true", help="ingest reads the simulator through a pipe"
    )
    parser.add_argument(
        "--commands",
        default=None,
        help="only these commands, by first word (e.g. sink,project); ingest always",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="commands at once after ingest (quick: 2, else 1)"
    )
    args = parser.parse_args()
    n = args.events or (QUICK_EVENTS if args.quick else 1_000_000)
    args.jobs = args.jobs or (2 if args.quick else 1)
    if args.quick:
        os.environ.setdefault("DOSSIER_DUCKDB_MEMORY", QUICK_DUCKDB_MEMORY)
    only = set(args.commands.split(",")) | {"ingest"} if args.commands else None
    if args.distributed:
        here = Path(__file__).with_name("scale_distributed.py")
        cmd = [sys.executable, str(here), "--events", str(n)] + (["--json"] if args.json else [])
        raise SystemExit(subprocess.call(cmd))

    root = args.keep or Path(tempfile.mkdtemp(prefix="scale-"))
    root.mkdir(parents=True, exist_ok=True)
    out_log = root / "commands.log"
    record = Record(root / "figures.jsonl", code_commit())
    try:
        # A year of a province sized to ~N events, 10 % spare; cut to N and N/4 lines.
        rate = round(n * 1.1 / (365 * EVENTS_PER_UNIT_DAY), 2)
        simulate = ["simulate", "--days", "365", "--seed", str(args.seed), "--start", START]
        simulate += ["--dossiers-per-day", str(rate)]
        print(f"simulate: {rate} dossiers a working day, 365 days from {START}", flush=True)
        full = root / "simulated.jsonl"
        wanted = [(label, want) for label, want in (("small", n // 4), ("large", n))]
        wanted = [(label, want) for label, want in wanted if args.only in (None, label)]
        if not args.pipe and ("all", "simulate") not in record.done:
            sim = run([*simulate, "--out", str(full)], None, out_log)
            record.add("all", "simulate", sim, sum(1 for _ in full.open("rb")))
        sizes = {}
        for label, want in wanted:
            log, work = root / f"{label}.jsonl", root / label
            if args.pipe:
                events = want
                if (label, "ingest") not in record.done:
                    work.mkdir(parents=True, exist_ok=True)
                    ingest = ["ingest", "-", "--rejects", str(work / "rejects.jsonl")]
                    sim, fig, events = run_piped(
                        [*simulate, "--out", "-"], want, ingest, work / "data", out_log
                    )
                    record.add(label, "simulate", sim, events, piped=True)
                    record.add(label, "ingest", fig, events, piped=True)
            else:
                events = head(full, log, want)
            print(f"{label}: {events:,} events", flush=True)
            figures = measure(label, log, events, work, out_log, record, args.jobs, only)
            sizes[label] = {"events": events, **figures}
        result: dict[str, Any] = {
            "events": n,
            "dossiers_per_day": rate,
            "jobs": args.jobs,
            "piped": args.pipe,
            "commit": record.commit,
            "simulate": record.done.get(("all", "simulate")),
            **sizes,
            "failed": sorted(f"{size}:{c}" for size, c in record.failed),
        }
        if len(sizes) == 2:
            result.update(growth(sizes["small"], sizes["large"]))
            print(
                f"memory_growth_ratio {result['memory_growth_ratio']} "
                f"({result['memory_growth_worst']}), "
                f"time_growth_ratio {result['time_growth_ratio']} "
                f"({result['time_growth_worst']}); target <= 1.3 each; "
                f"commands log: {out_log if args.keep else '(removed)'}"
            )
        if args.json:
            print(json.dumps(result, sort_keys=True))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def growth(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """The two ratios, over the commands measured at both sizes."""
    names = [k for k, v in large.items() if k in small and isinstance(v, dict) and "seconds" in v]
    mem = {k: large[k]["peak_rss_mb"] / small[k]["peak_rss_mb"] for k in names}
    tim = {
        k: small[k]["events_per_s"] / large[k]["events_per_s"]
        for k in names
        if small[k]["events_per_s"] and large[k]["events_per_s"]
    }
    worst_mem, worst_time = max(mem, key=mem.get), max(tim, key=tim.get)  # type: ignore[arg-type]
    return {
        "events_small": small["events"],
        "events_large": large["events"],
        "memory_growth_by_command": {k: round(v, 3) for k, v in mem.items()},
        "time_growth_by_command": {k: round(v, 3) for k, v in tim.items()},
        "memory_growth_ratio": round(mem[worst_mem], 3),
        "memory_growth_worst": worst_mem,
        "time_growth_ratio": round(tim[worst_time], 3),
        "time_growth_worst": worst_time,
    }


def code_commit() -> str:
    """The commit of the ``dossier`` being measured (the package's own checkout)."""
    import ledger

    here = Path(ledger.__file__).resolve().parent
    out = subprocess.run(
        ["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (out.stdout.strip() or "unknown") + ("+changes" if dirty else "")


if __name__ == "__main__":
    main()
