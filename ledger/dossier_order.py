"""The log regrouped by dossier without seeking: an external merge sort.

A process-mining export writes one case per dossier and a rebuild folds whole
dossiers in worker processes, so both need each dossier's events together.
Reading them through the (dossier, version) key makes the store jump to
another part of the file for nearly every event; once
the log is larger than the page cache (a province-year: 25 GB) every jump
waits on the disk. Instead the log is read once in ledger order (straight
through the file), cut into runs of about :data:`RUN_BYTES` of stored bytes,
each run sorted in memory and written to a temporary file, compressed; then
the runs are merged (in rounds of at most :data:`FAN_IN`). Memory: one run
being filled, and one small chunk per run while merging. Disk: the runs,
about two fifths of the stored bytes (LZ4; hashes, ids and sealed
blocks do not compress).

Knows no database: the rows come from the caller (``DossierLedger.stored``).
"""

from __future__ import annotations

import heapq
import marshal
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from itertools import count, groupby
from operator import itemgetter
from pathlib import Path
from typing import IO

import lz4.frame

Row = tuple[str, int, int, bytes]
"""(dossier id, version, position, stored bytes): sorts by dossier, then version."""

RUN_BYTES = 8 << 20
"""Bytes (stored bytes plus :data:`ROW_OVERHEAD` a row) gathered before a run is sorted
and written out: the memory bound of the sort. Small, so that memory is the same for
a short log and a long one; long logs make many runs, merged :data:`FAN_IN` at a time."""

FAN_IN = 64
"""Most runs merged at once (open files, and a chunk held per run)."""

CHUNK_BYTES = 128 << 10
"""Bytes per compressed chunk of a run: the most held per run while merging."""

ROW_OVERHEAD = 200
"""Bytes a row costs in memory beyond its stored bytes (tuple, id, integers, bytes header)."""


def grouped(rows: Iterable[Row], *, run_bytes: int = RUN_BYTES) -> Iterator[list[Row]]:
    """Each dossier's rows in version order, one dossier at a time, by dossier id."""
    with tempfile.TemporaryDirectory(prefix="dossier-order-") as tmp:
        names = (Path(tmp) / f"run-{i}" for i in count())
        runs: list[Path] = []
        run: list[Row] = []
        for batch in _batches(rows, run_bytes):  # every run but the last goes to disk
            if run:
                run.sort()
                runs.append(_write(next(names), run))
            run = batch
        run.sort()
        while len(runs) + 1 > FAN_IN:  # merge the oldest runs until the rest fit in one merge
            k = min(FAN_IN, len(runs) + 2 - FAN_IN)
            with _opened(runs[:k]) as files:
                merged = _write(next(names), heapq.merge(*files))
            for path in runs[:k]:
                path.unlink()
            runs = [*runs[k:], merged]
        with _opened(runs) as files:
            for _, group in groupby(heapq.merge(*files, iter(run)), key=itemgetter(0)):
                yield list(group)


@contextmanager
def _opened(runs: list[Path]) -> Iterator[list[Iterator[Row]]]:
    """Readers of sorted runs, closed on exit."""
    with ExitStack() as stack:
        yield [_read(stack.enter_context(path.open("rb"))) for path in runs]


def _write(path: Path, run: Iterable[Row]) -> Path:
    """A sorted run as length-prefixed LZ4 chunks of marshalled rows."""
    with path.open("wb") as f:
        for chunk in _batches(run, CHUNK_BYTES):
            blob = lz4.frame.compress(marshal.dumps(chunk))
            f.write(len(blob).to_bytes(8))
            f.write(blob)
    return path


def _batches(rows: Iterable[Row], limit: int) -> Iterator[list[Row]]:
    """Consecutive rows, cut when their size in memory reaches ``limit`` bytes."""
    batch: list[Row] = []
    size = 0
    for row in rows:
        batch.append(row)
        size += len(row[3]) + ROW_OVERHEAD
        if size >= limit:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _read(f: IO[bytes]) -> Iterator[Row]:
    while header := f.read(8):
        yield from marshal.loads(lz4.frame.decompress(f.read(int.from_bytes(header))))
