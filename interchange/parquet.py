"""``dossier export --parquet DIR``: every analysts' table as Parquet, hive-partitioned by month.

``DIR/<table>/month=YYYY-MM/*.parquet``, the month being the local month of the
row's business time (events: occurred; dossiers: received; handovers: handed
over; signals: detected; alerts: fired; metrics: the day). Any Parquet reader
(pyarrow, DuckDB, Spark, pandas) reads a table back with its partitions, e.g.
``SELECT * FROM read_parquet('DIR/dossiers/*/*.parquet', hive_partitioning = true)``.
Reads the published snapshot, so it runs while the loader runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics.connection import database_path
from analytics.snapshot import connect_reader

if TYPE_CHECKING:
    from ledger.settings import Settings

_TZ = "coalesce((SELECT value FROM analytics_state WHERE key = 'timezone'), 'Asia/Ho_Chi_Minh')"

PARTITION_BY: dict[str, str] = {
    "events": f"timezone({_TZ}, occurred_at)",
    "dossiers": "received_local",
    "handovers": f"timezone({_TZ}, handed_at)",
    "signals": f"timezone({_TZ}, detected_at)",
    "alerts": f"timezone({_TZ}, fired_at)",
    "metrics_daily": "day",
}
"""Table -> the local instant (or day) whose month partitions it."""


def export_parquet(
    settings: Settings, out_dir: Path, *, db_path: Path | None = None
) -> dict[str, Any]:
    """Write every table under ``out_dir``; return ``{table: rows}`` and the directory."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con, source = connect_reader(db_path or database_path(settings))
    counts: dict[str, int] = {}
    try:
        for table, when in PARTITION_BY.items():
            target = out_dir / table
            if target.exists():
                shutil.rmtree(target)  # a fresh export, never a mix with an older one
            ((n,),) = con.execute(f"SELECT count(*) FROM {table}").fetchall()
            counts[table] = int(n)
            if not n:
                continue
            con.execute(
                f"COPY (SELECT *, strftime({when}, '%Y-%m') AS month FROM {table}) "
                f"TO '{_quote(target)}' (FORMAT parquet, PARTITION_BY (month))"
            )
    finally:
        con.close()
    return {"dir": str(out_dir), "source": str(source), "rows": counts}


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
