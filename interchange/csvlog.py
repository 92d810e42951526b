"""CSV event logs in and out: a header row, one row per event.

Rows of one case may be anywhere in the file, so they are spooled to a
temporary SQLite file and read back case by case: memory stays bounded by the
largest case, not the file. A case's attributes are the first non-empty value
of each column over its rows (in file order). Line numbers are the file's own
(the header is line 1), so every problem names its line.
"""

from __future__ import annotations

import csv
import gzip
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from interchange.cases import LogError, SourceCase, SourceEvent
from interchange.mapping import Mapping


class RowError(ValueError):
    """One row that belongs to no case (no case id, wrong number of fields)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _open_text(path: Path, encoding: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding, newline="")  # type: ignore[return-value]
    return open(path, encoding=encoding, newline="")  # noqa: SIM115


def read_csv(
    path: Path, mapping: Mapping, progress: Any = None, spool_dir: Path | None = None
) -> Iterator[SourceCase | RowError]:
    """Row errors as they are met, then each case (in order of case id)."""
    with tempfile.TemporaryDirectory(dir=spool_dir, prefix="dossier-import-") as tmp:
        db = sqlite3.connect(Path(tmp) / "spool.sqlite3", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE rows (case_id TEXT, line INTEGER, row BLOB)")
            yield from _spool(path, mapping, db, progress)
            yield from _cases(db)
        finally:
            db.close()


def _spool(
    path: Path, mapping: Mapping, db: sqlite3.Connection, progress: Any
) -> Iterator[RowError]:
    batch: list[tuple[str, int, bytes]] = []
    try:
        with _open_text(path, mapping.encoding) as f:
            reader = csv.reader(f, delimiter=mapping.delimiter)
            try:
                header = next(reader)
            except StopIteration:
                raise LogError(f"{path}: empty file (a header row is required)") from None
            if mapping.case not in header:
                raise LogError(
                    f"{path}:1: no case column {mapping.case!r} "
                    f"(columns: {', '.join(header)}); set [source].case"
                )
            case_col = header.index(mapping.case)
            width = len(header)
            line = reader.line_num
            db.execute("BEGIN")
            for row in reader:
                start, line = line + 1, reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    yield RowError(start, f"{len(row)} fields, the header has {width}")
                    continue
                case = row[case_col].strip()
                if not case:
                    yield RowError(start, f"no case id in column {mapping.case!r}")
                    continue
                rec = {h: v for h, v in zip(header, row, strict=True) if v != ""}
                batch.append((case, start, orjson.dumps(rec)))
                if len(batch) >= 10_000:
                    db.executemany("INSERT INTO rows VALUES (?, ?, ?)", batch)
                    if progress is not None:
                        progress(len(batch))
                    batch = []
            if batch:
                db.executemany("INSERT INTO rows VALUES (?, ?, ?)", batch)
                if progress is not None:
                    progress(len(batch))
            db.execute("COMMIT")
    except csv.Error as e:
        raise LogError(f"{path}:{line + 1}: malformed CSV: {e}") from None
    except UnicodeDecodeError as e:
        raise LogError(f"{path}: not {mapping.encoding} text: {e}") from None


def _cases(db: sqlite3.Connection) -> Iterator[SourceCase]:
    db.execute("CREATE INDEX rows_by_case ON rows (case_id, line)")
    current: SourceCase | None = None
    current_id = None
    index = 0
    for case_id, line, blob in db.execute(
        "SELECT case_id, line, row FROM rows ORDER BY case_id, line"
    ):
        rec = orjson.loads(blob)
        if current is None or case_id != current_id:
            if current is not None:
                yield current
            index += 1
            current, current_id = SourceCase({}, [], index=index, line=line), case_id
        for key, value in rec.items():
            current.attrs.setdefault(key, value)
        current.events.append(SourceEvent(rec, line))
    if current is not None:
        yield current


# --- writing ----------------------------------------------------------------------


def csv_writer(out: IO[str], columns: list[str]) -> Any:
    """A ``csv.writer`` with the header written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    return writer
