"""Import into and export from the PostgreSQL store: the same dossiers and verdicts both ways."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from interchange.export import dossiers, export_log, ledger_mapping
from interchange.importer import import_log
from interchange.mapping import parse_mapping
from ledger.bootstrap import open_ledger
from ledger.settings import Settings
from projections.state import fold, view
from simulator.factories import event_stream

pytestmark = pytest.mark.integration


def _verdicts(ledger, now: datetime) -> dict[str, tuple[str, int]]:
    ids = sorted({r.dossier_id for r in ledger.iter_all()})
    return {
        d: (
            view(fold(ledger.events_of(d)), ledger.rules, now)["on_time"],
            len(ledger.events_of(d)),
        )
        for d in ids
    }


@pytest.mark.parametrize("parallel", [False, True])
def test_export_from_and_import_into_postgresql(
    pg_url: str, tmp_path: Path, parallel: bool
) -> None:
    source = open_ledger(Settings.from_env(tmp_path / "src"))
    assert not source.append_batch(event_stream(30, seed=4)).rejected
    log = tmp_path / "log.xes"
    summary = export_log(source, source.rules, xes_path=log)
    now = datetime.fromisoformat(summary["now"])

    pg = open_ledger(Settings.from_env(tmp_path / "pg", store=pg_url))
    mapping = parse_mapping(tomllib.loads(ledger_mapping("xes")))
    report = import_log(pg, log, mapping, parallel=parallel, batch_size=50)
    assert report.imported == 30 and not report.errors
    assert _verdicts(pg, now) == _verdicts(source, now)
    again = import_log(pg, log, mapping, parallel=parallel)
    assert again.stored == 0 and again.duplicates == report.stored

    small_pages = [[r.position for r in d] for d in dossiers(pg, page=7)]
    assert small_pages == [[r.position for r in d] for d in dossiers(pg)]
    assert small_pages == [[r.position for r in d] for d in dossiers(pg, run_bytes=2000)]
    assert [p for d in small_pages for p in d] and all(
        [r.position for r in pg.events_of(pg.read(p[0] - 1, 1)[0].dossier_id)] == p
        for p in small_pages
    )

    back = tmp_path / "back.xes"
    assert export_log(pg, pg.rules, xes_path=back)["cases"] == 30  # paged by dossier on PostgreSQL
    reimported = open_ledger(Settings.from_env(tmp_path / "again"))
    assert import_log(reimported, back, mapping).imported == 30
    assert _verdicts(reimported, now) == _verdicts(source, now)
