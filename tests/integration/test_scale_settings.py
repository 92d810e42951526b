"""Settings that keep long logs cheap: the workload's index, the DuckDB writer's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.connection import connect_writer
from ledger.settings import Settings
from projections.store import OPEN_HELD, SQLiteReadModels

pytestmark = pytest.mark.integration


def test_the_workload_reads_the_open_holders_index(tmp_path: Path) -> None:
    """Each page of ``project`` asks for the open dossiers' holders: through the partial
    index of open dossiers, not an index (or a scan) of every dossier ever held."""
    store = SQLiteReadModels(tmp_path / "readmodels.sqlite3")
    try:
        plan = store._conn.execute(
            f"EXPLAIN QUERY PLAN SELECT holder FROM rm_dossiers WHERE {OPEN_HELD}"
        ).fetchall()
    finally:
        store.close()
    assert any("rm_dossiers_open" in row[-1] for row in plan), plan


def _settings(con) -> tuple[str, str]:
    return con.execute(
        "SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold')"
    ).fetchone()


def test_the_analysts_writer_is_held_to_its_memory_and_checkpoint_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con = connect_writer(str(tmp_path / "a.duckdb"))
    try:
        default = _settings(con)
    finally:
        con.close()
    monkeypatch.setenv("DOSSIER_DUCKDB_MEMORY", "512MB")
    monkeypatch.setenv("DOSSIER_DUCKDB_CHECKPOINT", "64MB")
    settings = Settings.from_env(tmp_path)
    con = connect_writer(
        str(tmp_path / "b.duckdb"),
        memory=settings.duckdb_memory,
        checkpoint=settings.duckdb_checkpoint,
    )
    try:
        overridden = _settings(con)
    finally:
        con.close()
    assert default == ("244.1 MiB", "244.1 MiB")  # 256 MB, as DuckDB prints it
    assert overridden == ("488.2 MiB", "61.0 MiB")


def test_a_bad_writer_setting_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSSIER_DUCKDB_MEMORY", "lots")
    memory = Settings.from_env(tmp_path).duckdb_memory
    with pytest.raises(ValueError, match="DOSSIER_DUCKDB_MEMORY='lots'"):
        connect_writer(str(tmp_path / "a.duckdb"), memory=memory)
    connect_writer(str(tmp_path / "a.duckdb")).close()  # the refused connection was closed


def test_replaced_rows_take_the_place_of_those_with_their_key(tmp_path: Path) -> None:
    """``replace_rows``: a page's rows replace the rows with the same key (a null key
    part included), others stay, and nothing is doubled."""
    import duckdb

    from analytics.connection import replace_rows

    con = duckdb.connect(str(tmp_path / "r.duckdb"))
    try:
        con.execute("CREATE TABLE t (a VARCHAR, b DATE, v INTEGER, UNIQUE (a, b))")
        con.execute(
            "INSERT INTO t VALUES ('x', DATE '2026-01-31', 1), ('x', NULL, 2), ('y', NULL, 3)"
        )
        con.execute(
            "CREATE TEMP TABLE page AS SELECT * FROM (VALUES ('x', '2026-01-31', 10), "
            "('x', NULL, 20), ('z', '2026-02-28', 30)) AS p(a, b, v)"
        )
        con.execute("BEGIN")
        replace_rows(con, "t", "SELECT a, CAST(b AS DATE) AS b, v FROM page", ["a", "b"])
        con.execute("COMMIT")
        rows = con.execute("SELECT a, CAST(b AS VARCHAR), v FROM t ORDER BY a, b").fetchall()
    finally:
        con.close()
    assert rows == [
        ("x", "2026-01-31", 10),
        ("x", None, 20),
        ("y", None, 3),
        ("z", "2026-02-28", 30),
    ]


def test_a_readers_memory_map_is_bounded_by_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DOSSIER_SQLITE_MMAP`` bounds how much of the ledger a reader maps (and so holds
    resident); a bad value names the variable."""
    import sqlite3

    from ledger.bootstrap import open_ledger
    from ledger.log_reader import MMAP_BYTES, LogSource
    from ledger.settings import Settings

    path = tmp_path / "l.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE e (x)").connection.close()

    def mapped(source: LogSource) -> int:
        conn = source.connect()
        try:
            return conn.execute("PRAGMA mmap_size").fetchone()[0]
        finally:
            conn.close()

    assert mapped(LogSource(str(path), "e", "rowid")) == MMAP_BYTES

    def ledger_source() -> LogSource | None:
        ledger = open_ledger(Settings.from_env(tmp_path / "data"))
        try:
            return LogSource.of(ledger)
        finally:
            ledger.close()

    monkeypatch.delenv("DOSSIER_SQLITE_MMAP", raising=False)
    assert mapped(ledger_source()) == MMAP_BYTES
    monkeypatch.setenv("DOSSIER_SQLITE_MMAP", str(8 << 20))
    assert mapped(ledger_source()) == 8 << 20
    monkeypatch.setenv("DOSSIER_SQLITE_MMAP", "a lot")
    with pytest.raises(ValueError, match="DOSSIER_SQLITE_MMAP='a lot'"):
        ledger_source()
