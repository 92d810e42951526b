"""The loader in the caller's transaction: idempotent by position, page size and rollbacks."""

from __future__ import annotations

import io
from typing import Any

import duckdb
import orjson
import pytest

from analytics.loader import Loader
from ledger.domain.events import Recorded
from ledger.domain.rules import load_rules
from simulator import simulate

TABLES = ("events", "dossiers", "handovers", "dossier_period_ends", "dossier_facts")


@pytest.fixture(scope="module")
def records() -> list[Recorded]:
    buf = io.StringIO()
    simulate(3, 2, buf, start=__import__("datetime").date(2025, 9, 29))
    return [
        Recorded(position=i, version=1, envelope=orjson.loads(line))
        for i, line in enumerate(buf.getvalue().splitlines(), 1)
    ]


def _load(records: list[Recorded], page: int, *, rollback_at: int | None = None,
          replay: bool = False, cache: int = 10_000, restarts: bool = False,
          ) -> dict[str, list[Any]]:  # fmt: skip
    con = duckdb.connect()
    loader = Loader(con, load_rules(), cache_size=cache)
    pages = [records[i : i + page] for i in range(0, len(records), page)]
    for i, p in enumerate(pages):
        if restarts:  # a new process each page: every fact sheet read back from the file
            loader = Loader(con, load_rules(), cache_size=cache)
        con.execute("BEGIN")
        loader.apply(p)
        if i == rollback_at:  # the caller's own write failed after apply returned
            con.execute("ROLLBACK")
            con.execute("BEGIN")
            loader.apply(p)
        if replay and i:
            loader.apply(pages[i - 1] + p)  # at-least-once: the previous page again
        con.execute("COMMIT")
    out = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    con.close()
    return out


def test_pages_of_any_size_give_the_same_tables(records: list[Recorded]) -> None:
    assert _load(records, 5000) == _load(records, 333)


def test_a_tiny_cache_reads_the_folds_back_from_the_file(records: list[Recorded]) -> None:
    assert _load(records, 500, cache=3) == _load(records, 500)
    assert _load(records, 500, restarts=True) == _load(records, 500)


def test_replayed_records_change_nothing(records: list[Recorded]) -> None:
    assert _load(records, 500, replay=True) == _load(records, 500)


def test_a_rollback_after_apply_is_noticed_by_the_next_page(records: list[Recorded]) -> None:
    assert _load(records, 500, rollback_at=2) == _load(records, 500)


def test_the_loader_writes_nothing_sealed(records: list[Recorded]) -> None:
    con = duckdb.connect()
    con.execute("BEGIN")
    Loader(con, load_rules()).apply(records)
    con.execute("COMMIT")
    data = con.execute("SELECT string_agg(CAST(data AS VARCHAR), '') FROM events").fetchall()[0][0]
    facts = con.execute("SELECT string_agg(facts, '') FROM dossier_facts").fetchall()[0][0]
    applicants = con.execute("SELECT count(*) FROM dossiers WHERE applicant LIKE 'ap-%'")
    # The simulator's raw envelopes carry plain applicant blocks (the ledger seals them at
    # ingest); DuckDB keeps only a pseudonym, here absent, never a name or an ID number.
    assert '"name"' not in data and '"id_number"' not in data and "sealed" not in data
    assert '"name"' not in facts
    assert applicants.fetchall()[0][0] == 0
