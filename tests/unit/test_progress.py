"""The progress helper: silent on short runs off a terminal, plain lines on long ones."""

from __future__ import annotations

import io

import orjson

from cli import progress
from ledger.bootstrap import open_ledger
from ledger.ingest import ingest_lines
from ledger.settings import Settings
from simulator.factories import event_stream


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mode_follows_the_terminal_and_the_override(monkeypatch):
    assert progress.mode(io.StringIO()) == "plain"
    assert progress.mode(FakeTTY()) == "bar"
    assert progress.mode(FakeTTY(), forced="off") == "off"
    assert progress.mode(io.StringIO(), forced=" Bar ") == "bar"
    assert progress.mode(FakeTTY(), forced="sometimes") == "bar"  # not a mode: the terminal's
    monkeypatch.setenv("DOSSIER_PROGRESS", "off")
    forced = Settings.from_env().progress
    assert progress.mode(FakeTTY(), forced=forced) == "off"
    assert progress.task("x", stream=FakeTTY(), forced=forced)._how == "off"


def test_plain_mode_is_silent_for_a_short_run():
    out = io.StringIO()
    with progress.task("ingest", 100, unit="events", stream=out, how="plain") as bar:
        bar.advance(100)
    assert out.getvalue() == ""


def test_plain_mode_writes_lines_and_a_final_line_on_a_long_run():
    out = io.StringIO()
    with progress.task("ingest", 2048, unit="bytes", stream=out, how="plain", interval=0) as bar:
        bar(1024)
        bar(1024)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ingest: 1.0 KiB of 2.0 KiB (50%)")
    assert lines[-1].startswith("ingest: 2.0 KiB of 2.0 KiB (100%)") and lines[-1].endswith("done")


def test_bar_mode_draws_on_the_stream():
    out = FakeTTY()
    with progress.task("rebuild", 10, unit="events", stream=out, how="bar") as bar:
        bar.advance(10)
    assert "rebuild" in out.getvalue()


def test_ingest_tells_its_progress_every_byte_it_reads(tmp_path):
    """The ingest bar counts the bytes of the lines read, blank and bad lines too."""
    lines = [orjson.dumps(e) + b"\n" for e in event_stream(40, seed=3)]
    lines[5:5] = [b"\n", b"not json\n"]
    bar = progress.task("ingest", how="off")
    report = ingest_lines(open_ledger(Settings.from_env(tmp_path)), lines, progress=bar)
    assert report.stored == len(lines) - 2
    assert bar.completed == sum(map(len, lines))


def test_reading_moves_the_bar_to_the_last_position_read():
    class Rec:
        def __init__(self, position: int) -> None:
            self.position = position

    class Log:
        status = "ok"

        def max_position(self) -> int:
            return 10

        def read(self, after: int = 0, limit: int = 1000) -> list[Rec]:
            return [Rec(p) for p in range(after + 1, min(after + limit, 10) + 1)]

    bar = progress.task("project", how="off")
    log = progress.reading(Log(), bar)
    assert [r.position for r in log.read(0, 4)] == [1, 2, 3, 4]
    assert (bar.completed, bar.total) == (4, 10)
    assert log.read(10, 4) == [] and bar.completed == 4
    assert log.status == "ok"  # everything else passes through
