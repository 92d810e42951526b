"""Readers while the loader runs: a read-only copy published with an atomic rename.

DuckDB lets one process write a database file, and while it does no other
process may open that file, not even read-only. So the writer (``dossier sink``,
the embedded ``dossier process``) calls :func:`publish` after each commit: it
checkpoints the file (the WAL folded in, the file consistent on its own), copies
it to ``<name>.snapshot.duckdb.tmp`` and renames that over
``<name>.snapshot.duckdb``. A rename is atomic: a reader opens either the old
copy or the new one, and one that has the old copy open keeps reading it (its
inode lives on) while new readers get the new one. Readers never block the
writer and the writer never fails because someone is reading.

Freshness: a copy costs time in proportion to the file's size, so
:func:`publish` skips a copy when less than ``PUBLISH_COST_FACTOR`` times the
last copy's duration has passed since it (copies then take at most about 1/11 of
the writer's time, however large the file grows): a skipped publication is made
up by the next call after that delay, by :func:`publish_pending` (which a writer
calls when it goes idle), and at exit (``atexit``). While loading, readers see
the state of a commit about ten copies old: a second for a 100 MB file, a minute
or so for the several GB of a province-year (a cap on that delay would let the
copies, each of the whole file, take over the writer's time as the file grows);
when the writer stops, the pending copy is made at exit, so at rest the snapshot
is the file's last commit.

Readers always open the snapshot (:func:`connect_reader`), never the writer's
file: a reader holding that file, even read-only, would stop a writer from
starting.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

PUBLISH_COST_FACTOR = 10.0

_lock = threading.Lock()
_last: dict[str, tuple[float, float]] = {}  # path -> (when the last copy ended, its duration)
_pending: set[str] = set()


def snapshot_path(db_path: Path | str) -> Path:
    """Where the published copy of ``db_path`` lives (``x.duckdb`` -> ``x.snapshot.duckdb``)."""
    p = Path(db_path)
    return p.with_name(f"{p.stem}.snapshot{p.suffix or '.duckdb'}")


def publish(db_path: Path | str, *, force: bool = False) -> bool:
    """Publish a consistent read-only copy of ``db_path``; return whether a copy was made.

    Call it in the writing process right after a commit, with no transaction open
    on the file. ``force`` copies regardless of the pacing (end of a run).
    """
    key = str(Path(db_path).resolve())
    with _lock:
        now = time.monotonic()
        ended, took = _last.get(key, (float("-inf"), 0.0))
        wait = PUBLISH_COST_FACTOR * took
        if not force and now - ended < wait:
            if key not in _pending:
                _pending.add(key)
            return False
        _pending.discard(key)
        start = time.monotonic()
        _copy(Path(db_path))
        done = time.monotonic()
        _last[key] = (done, done - start)
        return True


def _copy(db_path: Path) -> None:
    import duckdb

    with duckdb.connect(str(db_path)) as con:  # the writer's own instance, in its process
        con.execute("CHECKPOINT")
        target = snapshot_path(db_path)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(db_path, tmp)
        os.replace(tmp, target)


def publish_pending(db_path: Path | str) -> bool:
    """Make the copy a paced :func:`publish` skipped, if any (a writer going idle calls
    this, so a quiet period never leaves readers behind); return whether it copied."""
    key = str(Path(db_path).resolve())
    if key not in _pending:
        return False
    return publish(db_path, force=True)


def _publish_pending() -> None:
    for key in list(_pending):
        try:
            publish(key, force=True)
        except Exception:  # noqa: BLE001 - at exit, a failed copy only leaves the older one
            pass


atexit.register(_publish_pending)


class NoAnalytics(FileNotFoundError):
    """No analysts' database to read yet (or none published while it is written)."""


def connect_reader(db_path: Path | str) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """A read-only connection on the published snapshot of ``db_path`` (the file itself,
    read-only, only when nothing was ever published). Returns it and the file it reads."""
    import duckdb

    db_path = Path(db_path)
    snap = snapshot_path(db_path)
    if snap.exists():
        return duckdb.connect(str(snap), read_only=True), snap
    if not db_path.exists():
        raise NoAnalytics(
            f"{db_path}: no analytics database yet (run dossier process or dossier sink)"
        )
    try:
        return duckdb.connect(str(db_path), read_only=True), db_path
    except duckdb.IOException as e:
        raise NoAnalytics(
            f"{db_path} is being written and no snapshot is published yet ({snap}): {e}"
        ) from None
