"""JSON Lines in, validated events out: the ``dossier ingest`` use case.

Each line is one envelope. Bad lines are reported as ``FILE:LINE: reason``
(the compiler convention) and written to a reject file with their reason; good
lines are stored. Idempotent by ``event_id``: ingesting the same file twice
adds nothing. For one envelope or a list of them in Python, use
``DossierLedger.append`` (raises the error) and ``DossierLedger.append_batch``
(returns an ``AppendResult`` with each rejection and its reason).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ledger.application import DossierLedger

BATCH_SIZE = 5000


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


MAX_LINE_BYTES = 1 << 20
"""Longest accepted line (1 MiB): an envelope is a few hundred bytes; a longer
line is a broken file (a missing newline, a binary dump), reported, not parsed."""

_BOM = "\ufeff"


def _text(line: str | bytes) -> str:
    """A line as text; raises UnicodeDecodeError for bytes that are not UTF-8."""
    return line.decode("utf-8") if isinstance(line, bytes) else line


def _counted(
    lines: Iterable[str | bytes], progress: Callable[[int], None], every: int = 500
) -> Iterator[str | bytes]:
    """``lines`` unchanged, telling ``progress`` their size every ``every`` lines (a call
    per line would cost more than a progress bar is worth)."""
    pending = count = 0
    for line in lines:
        pending += len(line)
        count += 1
        if count >= every:
            progress(pending)
            pending = count = 0
        yield line
    if pending:
        progress(pending)


def _batches(lines: Iterable[str | bytes], size: int) -> Iterator[list[tuple[int, str | bytes]]]:
    batch: list[tuple[int, str | bytes]] = []
    for number, line in enumerate(lines, start=1):
        if number == 1:  # a UTF-8 byte-order mark is not part of the first envelope
            if isinstance(line, bytes) and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            elif isinstance(line, str) and line.startswith(_BOM):
                line = line[1:]
        if not line.strip():
            continue
        batch.append((number, line))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse(line: str | bytes, max_line_bytes: int) -> tuple[Any, str, str | None]:
    """(envelope, raw text, None) or (None, raw text, reason)."""
    if len(line) > max_line_bytes:
        head = line[:200]
        raw = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
        return None, raw + "…", f"line too long: {len(line)} bytes (limit {max_line_bytes})"
    try:
        text = _text(line)
    except UnicodeDecodeError as e:
        raw = line.decode("utf-8", "backslashreplace").rstrip("\r\n")  # type: ignore[union-attr]
        return None, raw, f"not valid UTF-8: byte 0x{line[e.start]:02x} at column {e.start + 1}"
    raw = text.rstrip("\r\n")
    try:
        return orjson.loads(text), raw, None
    except orjson.JSONDecodeError as e:
        return None, raw, f"invalid JSON: {e}"


def ingest_lines(
    ledger: DossierLedger,
    lines: Iterable[str | bytes],
    *,
    source: str = "-",
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    max_line_bytes: int = MAX_LINE_BYTES,
    on_error: Callable[[LineError], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Validate and append JSON Lines envelopes in batches; report per line.

    ``lines`` may be text or bytes (a file opened in binary mode: invalid UTF-8
    is then one bad line, not a crash). A leading byte-order mark, CRLF line
    ends and blank lines are accepted; line numbers count every line.
    ``progress`` is told the size of the lines as they are read (bytes, for a
    binary stream).
    """
    if progress is not None:
        lines = _counted(lines, progress)
    report = IngestReport()
    overlay: dict[str, Any] | None = {} if dry_run else None
    for batch in _batches(lines, batch_size):
        parsed: list[Any] = []
        numbers: list[int] = []
        raws: list[str] = []
        errors: list[LineError] = []
        for number, line in batch:
            report.read += 1
            envelope, raw, reason = _parse(line, max_line_bytes)
            if reason is not None:
                errors.append(LineError(source, number, reason, raw))
                continue
            parsed.append(envelope)
            numbers.append(number)
            raws.append(raw)
        result = ledger.append_batch(parsed, dry_run=dry_run, overlay=overlay)
        for rej in result.rejected:
            errors.append(LineError(source, numbers[rej.index], rej.reason, raws[rej.index]))
        errors.sort(key=lambda e: e.line)
        report.errors.extend(errors)
        if on_error:
            for err in errors:
                on_error(err)
        report.duplicates += len(result.duplicates)
        report.stored += len(result.stored)
        if result.stored and not dry_run:
            positions = [r.position for r in result.stored]
            if report.first_position is None:
                report.first_position = min(positions)
            report.last_position = max(positions)
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
