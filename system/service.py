"""``dossier run``: the long-running embedded service.

Files of JSON Lines envelopes dropped into the inbox (write them under another
name, or with a leading dot, then rename: a ``.jsonl`` file is taken as
complete) are ingested one by one, oldest first, then moved to ``done/``, or to
``rejected/`` with their reject report (``NAME.rejects.jsonl``) when any line
was rejected (its good lines are stored). After each round the read models, the
stream processors (alerts, signals, metrics) and the analysts' DuckDB catch up
with the ledger.

Stopping (SIGTERM, Ctrl-C) is clean: the current ingest batch, read-model batch
or processor page finishes, nothing is half-applied, and a file not wholly
ingested stays in the inbox to be taken again (ingest is idempotent by
``event_id``) on the next start.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ledger.audit import issue_signed_digest
from ledger.bootstrap import open_ledger
from ledger.ingest import ingest_lines, write_rejects
from ledger.relay import DigestSchedule
from ledger.settings import Settings
from ledger.signing import key_path
from projections.runner import Projector, run_store
from projections.store import open_store
from streams.config import config_for
from system.demo import publish_analytics
from system.process import process


@dataclass
class RunStats:
    files_done: int = 0
    files_rejected: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected_lines: int = 0
    rounds: int = 0
    digests: int = 0
    last_process: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files_done": self.files_done,
            "files_rejected": self.files_rejected,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected_lines": self.rejected_lines,
            "digests": self.digests,
            "rounds": self.rounds,
        }


def _until(lines: Iterable[bytes], stop: threading.Event) -> Iterator[bytes]:
    """The lines, until ``stop`` is set (ingest then ends after its current batch)."""
    for line in lines:
        if stop.is_set():
            return
        yield line


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{n}{Path(name).suffix}"
        n += 1
    return target


def pending_files(inbox: Path) -> list[Path]:
    """Complete files waiting in the inbox, oldest first (hidden and partial names skipped)."""
    files = [
        p
        for p in inbox.iterdir()
        if p.is_file() and p.suffix == ".jsonl" and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


class Service:
    """One ledger, its read models and its processors, kept current from an inbox."""

    def __init__(
        self,
        settings: Settings,
        inbox: Path | None,
        *,
        stop: threading.Event | None = None,
        log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
        digest_every: float = 3600.0,
    ) -> None:

        self.settings = settings
        self.inbox = inbox
        self.stop = stop or threading.Event()
        self.log = log
        self.stats = RunStats()
        self.ledger = open_ledger(settings)
        self.store = open_store(settings, config_for(settings.data_dir).lateness)
        self.projector = Projector(self.store, self.ledger.rules)
        if inbox is not None:
            for sub in ("", "done", "rejected"):
                (inbox / sub).mkdir(parents=True, exist_ok=True)

        self.signing_key = key_path(settings)
        self.digests = DigestSchedule(digest_every)
        if not self.signing_key.is_file():
            self.log(
                f"note: no signing key at {self.signing_key}: no signed digests will be issued "
                "(run `dossier keys init` to create one)"
            )

    def sign_digest(self) -> Path | None:
        """A signed digest of the ledger to DATA_DIR/digests, when one is due (every
        ``digest_every`` seconds and at each day's close), with a signing key."""

        position = self.ledger.max_position()
        if not self.signing_key.is_file() or not self.digests.due(position):
            return None
        path = issue_signed_digest(
            self.ledger, self.settings.data_dir / "digests", self.signing_key, position
        )
        self.digests.issued(position)
        self.stats.digests += 1
        return path

    def ingest_file(self, path: Path) -> bool:
        """Ingest one inbox file; move it out when wholly read. False if stopped midway."""

        with path.open("rb") as stream:
            report = ingest_lines(self.ledger, _until(stream, self.stop), source=path.name)
            complete = not self.stop.is_set() or next(stream, None) is None
        if not complete:
            self.log(f"{path.name}: stopped midway ({report.stored} stored); stays in the inbox")
            self.stats.stored += report.stored
            return False
        self.stats.stored += report.stored
        self.stats.duplicates += report.duplicates
        assert self.inbox is not None
        if report.errors:
            target = _free_name(self.inbox / "rejected", path.name)
            rejects = target.with_name(target.stem + ".rejects.jsonl")
            with rejects.open("w", encoding="utf-8") as out:
                write_rejects(report.errors, out)
            os.replace(path, target)
            self.stats.files_rejected += 1
            self.stats.rejected_lines += report.rejected
            self.log(
                f"{path.name}: {report.stored} stored, {report.duplicates} already present, "
                f"{report.rejected} rejected -> {target} (reasons in {rejects.name})"
            )
        else:
            target = _free_name(self.inbox / "done", path.name)
            os.replace(path, target)
            self.stats.files_done += 1
            self.log(
                f"{path.name}: {report.stored} stored, {report.duplicates} already present "
                f"-> {target}"
            )
        return True

    def ingest_stream(self, stream: IO[bytes]) -> None:
        """Standard input: ingest until end of input (or stop); rejects to the data dir."""

        report = ingest_lines(self.ledger, _until(stream, self.stop), source="-")
        self.stats.stored += report.stored
        self.stats.duplicates += report.duplicates
        if report.errors:
            rejects = self.settings.data_dir / "rejects.jsonl"
            with rejects.open("a", encoding="utf-8") as out:
                write_rejects(report.errors, out)
            self.stats.rejected_lines += report.rejected
            self.log(f"stdin: {report.rejected} line(s) rejected (see {rejects})")

    def catch_up(self) -> None:
        """Read models and stream processors up to the ledger's end (each checkpointed)."""

        run_store(self.ledger, self.projector, once=True, should_stop=self.stop.is_set)
        if not self.stop.is_set():
            self.stats.last_process = process(self.settings, stop=self.stop)
        publish_analytics(self.settings)  # readers see this round at once
        self.sign_digest()
        self.stats.rounds += 1

    def run(self, *, poll: float = 1.0, stdin: IO[bytes] | None = None) -> RunStats:
        """Until stopped (or, reading ``stdin``, until its end and a last catch-up)."""
        if stdin is not None:
            reader = threading.Thread(target=self.ingest_stream, args=(stdin,), daemon=True)
            reader.start()
            while not self.stop.is_set():
                alive = reader.is_alive()
                self.catch_up()
                if not alive:
                    break
                self.stop.wait(poll)
            reader.join(5)
            return self.stats
        assert self.inbox is not None
        self.catch_up()
        while not self.stop.is_set():
            files = pending_files(self.inbox)
            for path in files:
                if self.stop.is_set() or not self.ingest_file(path):
                    break
            if files and not self.stop.is_set():
                self.catch_up()
            self.stop.wait(poll)
        return self.stats

    def close(self) -> None:
        self.store.close()
