"""The published snapshot: atomic, paced, never behind once the writer goes idle."""

from __future__ import annotations

from pathlib import Path

import duckdb

from analytics import snapshot
from analytics.snapshot import connect_reader, publish, publish_pending, snapshot_path


def _count(db: Path) -> int:
    con, source = connect_reader(db)
    try:
        assert source == snapshot_path(db)
        return con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    finally:
        con.close()


def test_a_paced_copy_is_made_up_when_the_writer_goes_idle(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(snapshot, "PUBLISH_COST_FACTOR", 1e9)  # pace every copy after the first
    db = tmp_path / "analytics.duckdb"
    writer = duckdb.connect(str(db))
    writer.execute("CREATE TABLE t (i INTEGER)")
    assert publish(db) is True
    reader_before, _ = connect_reader(db)  # a reader holding the old copy
    writer.execute("INSERT INTO t VALUES (1), (2)")
    assert publish(db) is False  # paced: readers still see the first copy
    assert publish_pending(db) is True  # idle: the skipped copy now
    # the reader that opened the old copy keeps its consistent view
    assert reader_before.execute("SELECT count(*) FROM t").fetchall()[0][0] == 0
    # (DuckDB shares one instance per path in a process: close it to see the new copy)
    reader_before.close()
    assert _count(db) == 2
    assert publish_pending(db) is False  # nothing left to copy
    writer.execute("INSERT INTO t VALUES (3)")
    assert publish(db, force=True) is True and _count(db) == 3
    writer.close()
    assert not snapshot_path(db).with_name(snapshot_path(db).name + ".tmp").exists()
