"""Settings that keep long logs cheap: the workload's index, the DuckDB writer's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.connection import connect_writer
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
    con = connect_writer(str(tmp_path / "b.duckdb"))
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
    with pytest.raises(ValueError, match="DOSSIER_DUCKDB_MEMORY='lots'"):
        connect_writer(str(tmp_path / "a.duckdb"))
    monkeypatch.delenv("DOSSIER_DUCKDB_MEMORY")
    connect_writer(str(tmp_path / "a.duckdb")).close()  # the refused connection was closed
