"""The distributed path at scale: writers, relay, projection and stream workers at once.

On one PostgreSQL store and one Kafka broker, all as separate ``dossier`` processes
started together: ``writers`` concurrent ``dossier ingest`` (each with its own
dossiers, in step through one simulated log, as front desks would), one following ``dossier relay``, two ``dossier
project --source kafka`` in one consumer group, two ``dossier worker`` (faust) in
one app. Then it checks that nothing was lost or reordered per dossier:

* the store: every event stored once, every chain verifies (``dossier verify --all``);
* ``dossier.events``: read back in full, per dossier the positions (after the
  consumers' dedupe rule) are exactly the store's, in ledger order;
* the read models: every dossier's ``last_position`` is its last in the store, and
  its control sheet has as many hand-overs as a rebuild from the store gives;
* the stream workers: no dead letter (a dossier out of order breaks its chain and
  would be dead-lettered), and once told the end of time (``dossier tick``) the
  final daily ``received`` counts per agency add up to the dossiers received, with
  no event later than the allowed lateness (3 days here: the writers' skew).

Used by ``tests/integration/test_scale_distributed.py`` (small) and
``bench/scale_distributed.py`` (1,000,000 events). Returns the figures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ledger.bootstrap import open_ledger
from ledger.settings import Settings
from projections.runner import Projector, rebuild
from projections.store import PostgresReadModels, SQLiteReadModels
from system.harness.crash import dossier_executable

EVENTS_PER_UNIT_DAY = 7.17
"""Events a simulated day per unit of ``--dossiers-per-day`` (30 days at 300: 64,488)."""
END_OF_TIME = "2030-01-01T00:00:00+07:00"


class Failure(AssertionError):
    """A check of the distributed run failed (the message says which and how)."""


def _env(work: Path, pg_url: str, bootstrap: str, partitions: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DOSSIER_STORE=pg_url,
        DOSSIER_KAFKA_BOOTSTRAP=bootstrap,
        DOSSIER_KAFKA_PARTITIONS=str(partitions),
        DOSSIER_DATA_DIR=str(work / "data"),
        DOSSIER_PROGRESS="off",
    )
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        [dossier_executable(), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise Failure(f"dossier {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def simulate(work: Path, events: int, seed: int, env: dict[str, str]) -> tuple[Path, int]:
    """A province whose 30 days give half as many events again as ``events``, cut to
    ``events`` lines (the cut falls before the dossiers' sparse tail, so the log is as
    dense in business time all along); the log and how many lines it holds."""
    days = 30
    rate = round(max(1.0, events * 1.5 / (days * EVENTS_PER_UNIT_DAY)), 2)
    full, cut = work / "simulated.jsonl", work / "events.jsonl"
    _run(
        ["simulate", "--days", str(days), "--seed", str(seed), "--dossiers-per-day", str(rate)]
        + ["--out", str(full)],
        env,
        timeout=7200,
    )
    n = 0
    with full.open("rb") as fin, cut.open("wb") as fout:
        for line in fin:
            if n >= events:
                break
            fout.write(line)
            n += 1
    full.unlink()
    return cut, n


def rounds(log: Path, writers: int, chunk: int) -> Iterator[list[list[bytes]]]:
    """The log in chunks of ``chunk`` lines, each split by dossier (a hash of its id)
    between the writers: every writer appends its share of one chunk before any
    starts the next, so the writers move through business time together, as front
    desks do. (A writer days ahead would push the stream workers' watermark past the
    others' dossiers: their late events would be judged against a future "now".)"""
    parts: list[list[bytes]] = [[] for _ in range(writers)]
    n = 0
    with log.open("rb") as fin:
        for line in fin:
            did = orjson.loads(line)["dossier_id"]
            parts[zlib.crc32(did.encode()) % writers].append(line)
            n += 1
            if n == chunk:
                yield parts
                parts, n = [[] for _ in range(writers)], 0
    if n:
        yield parts


def ingest_concurrently(
    log: Path, writers: int, env: dict[str, str], work: Path, deadline: float
) -> int:
    """Run ``writers`` ``dossier ingest`` processes at once per chunk of the log; how
    many rounds it took."""
    chunk = max(500, min(20_000, _count(log) // 12))
    done = 0
    for done, parts in enumerate(rounds(log, writers, chunk), start=1):
        procs = []
        for k, lines in enumerate(parts):
            path = work / f"writer{k}.jsonl"
            path.write_bytes(b"".join(lines))
            cmd = [dossier_executable(), "ingest", str(path), "--format", "json"]
            err = (work / "logs" / f"ingest{k}.log").open("ab")
            procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err), k))
        for p, k in procs:
            try:
                rc = p.wait(timeout=deadline)
            except subprocess.TimeoutExpired as e:
                raise Failure(f"writer {k} still running after {deadline} s") from e
            if rc != 0:
                tail = (work / "logs" / f"ingest{k}.log").read_text(errors="replace")[-2000:]
                raise Failure(f"writer {k} exited {rc} in round {done}:\n{tail}")
    return done


def _count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [dossier_executable(), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _alive(procs: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    for name, p in procs.items():
        if p.poll() is not None:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise Failure(f"{name} exited {p.returncode} early:\n{tail}")


def store_positions(pg_url: str, data: Path) -> dict[str, list[int]]:
    """Each dossier's positions in ledger order, read from the store in pages."""

    led = open_ledger(Settings.from_env(data, store=pg_url))
    try:
        out: dict[str, list[int]] = defaultdict(list)
        for rec in led.iter_all():
            out[rec.dossier_id].append(rec.position)
        return dict(out)
    finally:
        led.close()
        led.keys.close()


def check_topic(
    bootstrap: str, expected: dict[str, list[int]], total: int, deadline: float
) -> dict[str, int]:
    """Read ``dossier.events`` from the start, applying the consumers' dedupe rule per
    dossier, until every stored event was seen or ``deadline``; each record kept must
    be the dossier's next position in the store."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        max_partition_fetch_bytes=8 << 20,
    )
    seen: dict[str, int] = defaultdict(int)
    kept = duplicates = records = 0
    try:
        parts = consumer.partitions_for_topic("dossier.events") or set()
        tps = [TopicPartition("dossier.events", p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = time.monotonic() + deadline
        while kept < total and time.monotonic() < end:
            for msgs in consumer.poll(timeout_ms=500, max_records=20_000).values():
                for m in msgs:
                    records += 1
                    did = m.key.decode()
                    position = int(orjson.loads(m.value)["position"])
                    want, i = expected.get(did, []), seen[did]
                    if i and position <= want[i - 1]:
                        duplicates += 1
                        continue
                    if i >= len(want) or position != want[i]:
                        raise Failure(
                            f"dossier.events[{m.partition}@{m.offset}]: {did} position "
                            f"{position}, expected {want[i] if i < len(want) else 'nothing'}"
                        )
                    seen[did] = i + 1
                    kept += 1
    finally:
        consumer.close()
    missing = {d: len(p) - seen[d] for d, p in expected.items() if seen[d] != len(p)}
    if missing:
        first = sorted(missing)[:3]
        raise Failure(f"{sum(missing.values())} events never reached the topic (e.g. {first})")
    return {"records": records, "duplicates": duplicates}


def _pg_rows(pg_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the read models (their ``?schema=`` honoured)."""

    store = PostgresReadModels(pg_url)  # creates the tables if no worker has yet
    try:
        return store._conn.execute(sql).fetchall()  # noqa: SLF001 - a check, not a use
    finally:
        store.close()


def read_models_caught_up(pg_url: str, last: dict[str, int]) -> tuple[bool, int]:
    """Whether every dossier's read-model row is at its last stored position; how many are."""
    rows = _pg_rows(pg_url, "SELECT dossier_id, last_position FROM rm_dossiers")
    done = sum(1 for did, pos in rows if last.get(did) == pos)
    return done == len(last) and len(rows) == len(last), done


def postgres_mb(pg_url: str) -> float:
    """Size on disk of the schema's tables with their indexes (store, keys, read models)."""
    from urllib.parse import parse_qs, urlparse

    schema = parse_qs(urlparse(pg_url).query).get("schema", ["public"])[0]
    sql = (
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' "
        "AND c.relkind IN ('r', 'p')"
    )
    return round(int(_pg_rows(pg_url, sql)[0][0]) / 2**20, 1)


SHEETS = "SELECT dossier_id, COUNT(*) FROM rm_control_sheet GROUP BY dossier_id"


def check_sheets(pg_url: str, data: Path, work: Path) -> int:
    """The workers' control sheets have as many rows per dossier as a rebuild's."""

    led = open_ledger(Settings.from_env(data, store=pg_url))
    store = SQLiteReadModels(work / "rebuilt.sqlite3")
    try:
        rebuild(led, Projector(store, led.rules))
        want = dict(store._conn.execute(SHEETS).fetchall())  # noqa: SLF001
    finally:
        store.close()
        led.close()
        led.keys.close()
    got = dict(_pg_rows(pg_url, SHEETS))
    if got != want:
        diff = sorted(d for d in set(got) | set(want) if got.get(d) != want.get(d))
        raise Failure(f"control sheets differ from a rebuild for {len(diff)} dossiers: {diff[:3]}")
    return sum(want.values())


def check_streams(
    bootstrap: str, dossiers: int, deadline: float, quiet: float, tick: Callable[[], None]
) -> dict[str, int]:
    """Final daily ``received`` per agency (last row per key) add up to ``dossiers``;
    nothing dead-lettered. Reads until the workers are through the log (the provisional
    rows add up, or nothing new for three times ``quiet``), then calls ``tick`` (the
    end of time: every day final; ticking earlier would make the rest late), then
    until every row is final, the sum is reached and nothing new came for ``quiet``
    seconds, or ``deadline``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        group_id=f"check-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    consumer.subscribe(["dossier.metrics", "dossier.dlq"])
    received: dict[tuple[str, str], tuple[int, bool]] = {}
    late: dict[tuple[str, str], int] = {}
    dead: list[str] = []
    metrics = 0
    end = time.monotonic() + deadline
    last_new = time.monotonic()
    total = 0
    ticked = False
    try:
        while time.monotonic() < end:
            batch = consumer.poll(timeout_ms=500, max_records=20_000)
            for msgs in batch.values():
                for m in msgs:
                    last_new = time.monotonic()
                    if m.topic == "dossier.dlq":
                        dead.append(dict(m.headers).get("reason", b"?").decode())
                        continue
                    metrics += 1
                    row = orjson.loads(m.value)
                    if row["window"] == "day" and row["scope"] == "agency":
                        key = (row["day"], row["key"])
                        received[key] = (int(row["received"]), bool(row["final"]))
                        late[key] = int(row["late_events"])
            total = sum(n for n, _ in received.values())
            finals = all(f for _, f in received.values())
            idle = time.monotonic() - last_new
            if not ticked and idle >= quiet and (total == dossiers or idle >= 3 * quiet):
                tick()
                ticked, last_new = True, time.monotonic()
            elif ticked and total == dossiers and finals and idle >= quiet:
                break
    finally:
        consumer.close()
    if dead:
        raise Failure(f"{len(dead)} records dead-lettered by the stream workers: {dead[:3]}")
    if sum(late.values()):
        raise Failure(f"{sum(late.values())} events came later than the allowed lateness")
    if total != dossiers:
        raise Failure(f"final daily received add up to {total}, {dossiers} dossiers were received")
    return {"metric_records": metrics, "agency_days": len(received)}


def run(
    work: Path,
    *,
    events: int,
    pg_url: str,
    bootstrap: str,
    partitions: int = 4,
    writers: int = 4,
    seed: int = 1,
    deadline: float = 600.0,
    warmup: float = 20.0,
) -> dict[str, Any]:
    """Run the whole scenario (see the module docstring); its figures, or :class:`Failure`."""
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    env = _env(work, pg_url, bootstrap, partitions)
    t0 = time.monotonic()
    log, events = simulate(work, events, seed, env)
    simulated_s = time.monotonic() - t0
    _run(["status"], env)  # creates the tables before the writers race
    _run(["kafka", "init", "--partitions", str(partitions)], env)
    # The writers append in rounds (see ``rounds``): within a round one may be a day
    # or so of business time ahead of another, which the watermark must allow for.
    config = work / "streams.toml"
    config.write_text('[streams]\nlateness = "3d"\n', encoding="utf-8")
    group, app = f"proj-{uuid.uuid4().hex[:8]}", f"streams-{uuid.uuid4().hex[:8]}"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    figures: dict[str, Any] = {"events": events, "partitions": partitions, "writers": writers}
    try:
        procs["relay"] = _start(["relay", "--poll-interval", "0.2"], env, logs / "relay.log")
        for i in range(2):
            procs[f"project{i}"] = _start(
                ["project", "--source", "kafka", "--group", group], env, logs / f"project{i}.log"
            )
            procs[f"worker{i}"] = _start(
                ["worker", "--app-id", app, "--config", str(config)], env, logs / f"worker{i}.log"
            )
        # Let both groups form before the first event: a member joining later takes
        # partitions over mid-stream, and a faust worker then rebuilds its tables
        # from the changelog, which Tansu's under-reported end offsets can cut short.
        time.sleep(warmup)
        _alive(procs, logs)
        started = time.monotonic()
        figures["ingest_rounds"] = ingest_concurrently(log, writers, env, work, deadline)
        figures["ingest_s"] = round(time.monotonic() - started, 1)
        _alive(procs, logs)

        expected = store_positions(pg_url, work / "data")
        stored = sum(len(p) for p in expected.values())
        if stored != events:
            raise Failure(f"{stored} events stored, {events} written by the writers")
        _run(["verify", "--all"], env, timeout=deadline)
        topic = check_topic(bootstrap, expected, stored, deadline)
        figures["relayed_s"] = round(time.monotonic() - started, 1)
        figures |= {f"topic_{k}": v for k, v in topic.items()}

        last = {d: p[-1] for d, p in expected.items()}
        end = time.monotonic() + deadline
        while True:
            ok, done = read_models_caught_up(pg_url, last)
            if ok:
                break
            _alive(procs, logs)
            if time.monotonic() > end:
                raise Failure(f"read models: {done} of {len(last)} dossiers caught up")
            time.sleep(1.0)
        figures["projected_s"] = round(time.monotonic() - started, 1)
        figures["control_sheet_rows"] = check_sheets(pg_url, work / "data", work)

        _alive(procs, logs)
        received = sum(1 for p in expected.values() if p)  # every dossier starts with a receipt
        figures |= check_streams(
            bootstrap,
            received,
            deadline,
            quiet=10.0,
            tick=lambda: _run(["tick", "--now", END_OF_TIME], env),
        )
        figures["streamed_s"] = round(time.monotonic() - started, 1)
        _alive(procs, logs)
        figures["dossiers"] = len(expected)
        figures["postgres_mb"] = postgres_mb(pg_url)
        figures["simulate_s"] = round(simulated_s, 1)
        figures["end_to_end_events_per_s"] = round(events / figures["streamed_s"])
        figures["ingest_events_per_s"] = round(events / figures["ingest_s"])
        return figures
    finally:
        _stop(list(procs.values()))
