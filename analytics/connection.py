"""The one writer's connection to the analysts' DuckDB file, and its settings.

One process writes ``analytics.duckdb`` (``dossier sink`` or ``dossier process``);
readers open the published snapshot (:mod:`analytics.snapshot`). The settings here
keep the writer's memory and its time per event flat however long the log grows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.settings import Settings

if TYPE_CHECKING:
    import duckdb

DATABASE_FILE = "analytics.duckdb"
"""The analysts' database in a data directory (``DATA_DIR/analytics.duckdb``)."""

WRITER_MEMORY = "256MB"
"""DuckDB's memory limit for the one writer of the analysts' file (``DOSSIER_DUCKDB_MEMORY``,
``Settings.duckdb_memory``, overrides it). Without a limit DuckDB keeps every block it
touched, and the sink's peak memory grew with the log (measured: 583 MB at 250,000 events,
947 MB at 1,000,000); with it, the blocks beyond are written out and read again when needed."""
WRITER_CHECKPOINT = "256MB"
"""Write-ahead log size that triggers DuckDB's checkpoint (``DOSSIER_DUCKDB_CHECKPOINT``,
``Settings.duckdb_checkpoint``; DuckDB's own default: 16MB). A checkpoint rewrites each
table's key index whole (duckdb/duckdb#24848), so at the default one every page or two,
each costing more as the file grows (measured: commits from 1.2 s to 8 s per 100,000
events between the first and the tenth)."""


SETTINGS = (
    ("memory_limit", "DOSSIER_DUCKDB_MEMORY", WRITER_MEMORY),
    ("checkpoint_threshold", "DOSSIER_DUCKDB_CHECKPOINT", WRITER_CHECKPOINT),
)
"""(DuckDB setting, the variable that overrides it (read into ``Settings``; named in the
error a refused value gives), its default)."""


def _apply_settings(con: duckdb.DuckDBPyConnection, given: tuple[str | None, ...]) -> None:
    """The writer's settings on the database instance, once open (``SET``), not passed at
    connect: DuckDB refuses a second connection to an open file with another
    configuration, and the snapshot's copy opens one in the same process. ``given``: a
    value for each of :data:`SETTINGS` (None: its default). A value DuckDB refuses is
    reported with the variable that gave it."""
    import duckdb

    for (name, variable, default), setting in zip(SETTINGS, given, strict=True):
        value = default if setting is None else setting
        try:
            con.execute(f"SET {name} = ?", [value])
        except duckdb.Error as e:
            con.close()
            raise ValueError(f"{variable}={value!r}: not a DuckDB {name} ({e})") from None


def connect_writer(
    path: str,
    wait_s: float = 30.0,
    *,
    memory: str | None = None,
    checkpoint: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the file for writing, waiting while a reader briefly holds it (a reader that
    found no snapshot yet reads the file itself). ``memory`` and ``checkpoint``: the
    writer's limits (``Settings.duckdb_memory``, ``Settings.duckdb_checkpoint``; None:
    :data:`WRITER_MEMORY`, :data:`WRITER_CHECKPOINT`)."""
    import duckdb

    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(path)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        _apply_settings(con, (memory, checkpoint))
        return con


def replace_rows(con: duckdb.DuckDBPyConnection, table: str, select: str, key: list[str]) -> None:
    """Rows of ``select`` replace the rows of ``table`` with the same ``key``: delete, then
    insert, in the caller's transaction. DuckDB's ``INSERT OR REPLACE`` rewrites every
    column of a matched row through the key index; measured on a 1,000,000-row table of
    41 columns, a 5,000-row page took 0.97 s that way and 0.21 s this way."""
    on = " AND ".join(f'{table}."{k}" IS NOT DISTINCT FROM page."{k}"' for k in key)
    con.execute(f"DELETE FROM {table} USING ({select}) AS page WHERE {on}")
    con.execute(f"INSERT INTO {table} {select}")


def database_path(settings: Settings) -> Path:
    """The analysts' DuckDB file of a data directory: the one place it is named."""
    return settings.data_dir / DATABASE_FILE
