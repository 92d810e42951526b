"""The log regrouped by dossier through sorted runs on disk equals a sort in memory."""

from __future__ import annotations

import random

import pytest

from ledger.dossier_order import Row, grouped


def ledger_rows(seed: int, dossiers: int = 40, events: int = 400) -> list[Row]:
    """Rows as a ledger stores them: positions ascending, each dossier's versions 1, 2, ..."""
    rng = random.Random(seed)
    versions: dict[str, int] = {}
    rows = []
    for position in range(1, events + 1):
        did = f"000.{rng.randrange(dossiers):02d}.H60-2601{rng.randrange(10)}"
        versions[did] = versions.get(did, 0) + 1
        rows.append((did, versions[did], position, rng.randbytes(rng.randrange(0, 300))))
    return rows


@pytest.mark.parametrize("run_bytes", [1, 700, 5_000, 1 << 30])
def test_runs_of_any_size_give_each_dossier_whole_in_version_order(run_bytes: int) -> None:
    rows = ledger_rows(seed=run_bytes)
    groups = list(grouped(iter(rows), run_bytes=run_bytes))
    assert [r for g in groups for r in g] == sorted(rows)  # nothing lost, changed or repeated
    assert all(len({r[0] for r in g}) == 1 for g in groups)  # one dossier a group
    assert len(groups) == len({r[0] for r in rows})  # and each dossier once


def test_more_runs_than_one_merge_takes_are_merged_in_rounds(monkeypatch) -> None:
    from ledger import dossier_order

    monkeypatch.setattr(dossier_order, "FAN_IN", 3)
    rows = ledger_rows(seed=9, events=300)
    for run_bytes in (1, 400, 2000):  # 300, ~100 and ~25 runs
        assert [r for g in grouped(iter(rows), run_bytes=run_bytes) for r in g] == sorted(rows)


def test_an_empty_log_gives_nothing() -> None:
    assert list(grouped(iter([]), run_bytes=10)) == []


def test_the_runs_are_removed_after_the_merge(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert len(list(grouped(iter(ledger_rows(seed=1)), run_bytes=500))) > 1
    assert list(tmp_path.iterdir()) == []
