"""JSON Lines in, validated events out: the ``dossier ingest`` use case.

Each line is one envelope. Bad lines are reported as ``FILE:LINE: reason``
(the compiler convention) and written to a reject file with their reason; good
lines are stored. Idempotent by ``event_id``: ingesting the same file twice
adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ledger.application import DossierLedger

BATCH_SIZE = 2000


@dataclass
class LineError:
    source: str
    line: int
    reason: str
    raw: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class IngestReport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)
    first_position: int | None = None
    last_position: int | None = None

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "first_position": self.first_position,
            "last_position": self.last_position,
        }


def _batches(lines: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    batch: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        batch.append((number, line))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_lines(
    ledger: DossierLedger,
    lines: Iterable[str],
    *,
    source: str = "-",
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    on_error: Callable[[LineError], None] | None = None,
) -> IngestReport:
    """Validate and append JSON Lines envelopes in batches; report per line."""
    report = IngestReport()
    overlay: dict[str, Any] | None = {} if dry_run else None
    for batch in _batches(lines, batch_size):
        parsed: list[Any] = []
        numbers: list[int] = []
        raws: list[str] = []
        for number, line in batch:
            report.read += 1
            try:
                parsed.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                err = LineError(source, number, f"invalid JSON: {e}", line.rstrip("\n"))
                report.errors.append(err)
                if on_error:
                    on_error(err)
                continue
            numbers.append(number)
            raws.append(line.rstrip("\n"))
        result = ledger.append_batch(parsed, dry_run=dry_run, overlay=overlay)
        for rej in sorted(result.rejected, key=lambda r: r.index):
            err = LineError(source, numbers[rej.index], rej.reason, raws[rej.index])
            report.errors.append(err)
            if on_error:
                on_error(err)
        report.duplicates += len(result.duplicates)
        report.stored += len(result.stored)
        if result.stored:
            positions = [r.position for r in result.stored]
            if report.first_position is None:
                report.first_position = min(positions)
            report.last_position = max(positions)
    report.errors.sort(key=lambda e: e.line)
    return report


def write_rejects(errors: Iterable[LineError], out: IO[str]) -> None:
    """One JSON object per rejected line: where, why, and the line itself."""
    for err in errors:
        out.write(
            orjson.dumps(
                {"source": err.source, "line": err.line, "reason": err.reason, "raw": err.raw}
            ).decode()
            + "\n"
        )
