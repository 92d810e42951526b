"""Kill the relay with SIGKILL at random moments while the ledger ingests; check the topic.

Used by tests/integration/test_relay_crash.py (a few kill points) and
bench/relay_crash.py (many). The relay runs as a real ``dossier relay``
subprocess following the store; the ledger is fed from a thread of this
process; the broker is never touched (a Tansu restart would wipe it).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ledger.bootstrap import open_ledger
from ledger.settings import Settings
from system.harness.topic import dedupe, ledger_positions, read_topic


@dataclass
class CrashResult:
    events: int = 0
    kill_points: int = 0
    kills_with_lag: int = 0
    """Kills that struck while the ledger was ahead of the relay's cursor."""
    cursor_at_kills: list[int] = field(default_factory=list)
    records_on_topic: int = 0
    duplicates: int = 0
    missing: int = 0
    out_of_order_dossiers: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.out_of_order_dossiers == 0 and self.events > 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("cursor_at_kills")
        return d | {"ok": self.ok}


def dossier_executable() -> str:
    """The ``dossier`` console script next to this interpreter (else on PATH)."""
    beside = Path(sys.executable).with_name("dossier")
    return str(beside) if beside.exists() else "dossier"


def _relay_cmd(bootstrap: str, data_dir: Path, page: int, *extra: str) -> list[str]:
    return [
        dossier_executable(),
        "relay",
        "--bootstrap",
        bootstrap,
        "--data-dir",
        str(data_dir),
        "--page",
        str(page),
        "--poll-interval",
        "0.05",
        "--linger-ms",
        "5",
        *extra,
    ]


def run_crash_scenario(
    bootstrap: str,
    data_dir: Path,
    envelopes: list[dict[str, Any]],
    *,
    kills: int,
    seed: int = 7,
    page: int = 50,
    ingest_batch: int = 25,
    ingest_seconds: float | None = None,
    store: str | None = None,
    log: bool = False,
) -> CrashResult:
    """Ingest ``envelopes`` in small batches while killing the relay ``kills`` times.

    Ingestion is paced to last about as long as the kill phase (``ingest_seconds``,
    default 0.7 s per kill), so that most kills strike while the relay lags.
    """

    rng = random.Random(seed)
    settings = Settings.from_env(data_dir, store=store)
    ledger = open_ledger(settings)
    env = {**os.environ, "DOSSIER_DATA_DIR": str(data_dir)}
    env.pop("DOSSIER_KAFKA_BOOTSTRAP", None)
    if store:
        env["DOSSIER_STORE"] = store
    else:
        env.pop("DOSSIER_STORE", None)
    result = CrashResult(events=len(envelopes))
    started = time.monotonic()
    done = threading.Event()
    failure: list[BaseException] = []

    batches = max(1, -(-len(envelopes) // ingest_batch))
    pause = (kills * 0.7 if ingest_seconds is None else ingest_seconds) / batches

    def feed() -> None:
        try:
            for i in range(0, len(envelopes), ingest_batch):
                res = ledger.append_batch(envelopes[i : i + ingest_batch])
                if res.rejected:
                    raise AssertionError(f"rejected: {res.rejected[0].reason}")
                time.sleep(pause)
        except BaseException as e:  # noqa: BLE001 - reported to the caller below
            failure.append(e)
        finally:
            done.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    for k in range(kills):
        proc = subprocess.Popen(
            _relay_cmd(bootstrap, data_dir, page),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Startup (imports, connecting) takes a few hundred ms; strike across it and beyond.
        time.sleep(rng.uniform(0.2, 1.2))
        lagging = ledger.max_position() > ledger.get_cursor("relay")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        result.kill_points += 1
        result.kills_with_lag += int(lagging)
        result.cursor_at_kills.append(ledger.get_cursor("relay"))
        if log:
            print(
                f"kill {k + 1}/{kills}: cursor {result.cursor_at_kills[-1]}, "
                f"store {ledger.max_position()}",
                file=sys.stderr,
            )
    done.wait()
    feeder.join()
    if failure:
        raise failure[0]
    final = subprocess.run(
        _relay_cmd(bootstrap, data_dir, page, "--once"), env=env, capture_output=True, text=True
    )
    if final.returncode != 0:
        raise RuntimeError(f"final relay --once failed: {final.stderr}")
    expected = ledger_positions(ledger)
    total = sum(len(v) for v in expected.values())
    records = read_topic(bootstrap, "dossier.events", total, deadline=60.0, grace=1.5)
    kept, skipped = dedupe(records)
    result.records_on_topic = len(records)
    result.duplicates = skipped
    result.missing = total - sum(len(v) for v in kept.values())
    result.out_of_order_dossiers = sum(1 for d, ps in expected.items() if kept.get(d) != ps)
    result.seconds = round(time.monotonic() - started, 2)
    return result
