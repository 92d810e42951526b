"""``dossier import``: a case log (XES or CSV) in, through a mapping, into the ledger.

Cases are read one at a time, mapped and judged whole (:func:`map_case`), and
appended in batches through the same validation and idempotency as ``dossier
ingest`` (``DossierLedger.append_batch``). Each batch first appends its cases'
receipts, then the rest of the cases whose receipt the ledger took (or already
had): a dossier the ledger already holds from elsewhere is reported, and none of
the case's events are added to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ledger.application import DossierLedger
from ledger.eventlog.cases import CaseRejected, LogError, MappedCase, SourceCase, map_case
from ledger.eventlog.csvlog import RowError, read_csv
from ledger.eventlog.mapping import Mapping
from ledger.eventlog.xes import read_xes

BATCH_SIZE = 5000


@dataclass
class CaseError:
    """A case (or a CSV row) that was not imported, and why."""

    source: str
    reason: str
    case: str | None = None
    line: int | None = None
    trace: int | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where = f"{self.source}:{self.line}"
        elif self.trace is not None:
            where = f"{self.source}: trace {self.trace}"
        return (
            f"{where}: case {self.case}: {self.reason}" if self.case else f"{where}: {self.reason}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "trace": self.trace,
            "case": self.case,
            "reason": self.reason,
        }


@dataclass
class ImportReport:
    cases: int = 0
    imported: int = 0  # cases whose every event is now in the ledger
    events: int = 0  # events read from the log
    duplicate_rows: int = 0  # exact duplicate events within a case, dropped
    stored: int = 0  # envelopes appended now
    duplicates: int = 0  # envelopes the ledger already had
    errors: list[CaseError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "imported": self.imported,
            "rejected": self.rejected,
            "events": self.events,
            "duplicate_rows": self.duplicate_rows,
            "stored": self.stored,
            "duplicates": self.duplicates,
        }


def read_cases(
    path: Path, mapping: Mapping, progress: Callable[[int], None] | None = None
) -> Iterator[SourceCase | RowError]:
    if mapping.format == "xes":
        return read_xes(path, progress)
    return read_csv(path, mapping, progress)


def import_log(
    ledger: DossierLedger,
    path: Path,
    mapping: Mapping,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    on_error: Callable[[CaseError], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import every case of a log; report each case that could not be imported.

    Raises :class:`LogError` if the log cannot be read on (the cases read before
    it are imported).
    """
    source = str(path)
    report = ImportReport()
    overlay: dict[str, Any] | None = {} if dry_run else None
    pending: list[tuple[SourceCase, MappedCase]] = []
    size = 0

    def fail(err: CaseError) -> None:
        report.errors.append(err)
        if on_error is not None:
            on_error(err)

    def flush() -> None:
        nonlocal pending, size
        if pending:
            _append(ledger, pending, source, mapping, dry_run, overlay, report, fail)
        pending, size = [], 0

    try:
        for item in read_cases(path, mapping, progress):
            if isinstance(item, RowError):
                fail(CaseError(source, item.reason, line=item.line))
                continue
            report.cases += 1
            report.events += len(item.events)
            try:
                mapped = map_case(item, mapping, ledger.rules)
            except CaseRejected as e:
                fail(_error(source, mapping, item, e.reason, e.line, e.dossier_id))
                continue
            report.duplicate_rows += mapped.duplicate_rows
            pending.append((item, mapped))
            size += len(mapped.envelopes)
            if size >= batch_size:
                flush()
    finally:
        flush()
    return report


def _error(
    source: str,
    mapping: Mapping,
    case: SourceCase,
    reason: str,
    line: int | None = None,
    dossier_id: str | None = None,
) -> CaseError:
    name = dossier_id or case.name
    if name is None and mapping.format == "csv":
        value = case.attrs.get(mapping.case)
        name = None if value is None else str(value)
    if mapping.format == "csv":
        return CaseError(source, reason, name, line=line or case.line)
    return CaseError(source, reason, name, trace=case.index)


def _append(
    ledger: DossierLedger,
    pending: list[tuple[SourceCase, MappedCase]],
    source: str,
    mapping: Mapping,
    dry_run: bool,
    overlay: dict[str, Any] | None,
    report: ImportReport,
    fail: Callable[[CaseError], None],
) -> None:
    receipts = ledger.append_batch(
        [m.envelopes[0] for _, m in pending], dry_run=dry_run, overlay=overlay
    )
    refused = {r.index: r.reason for r in receipts.rejected}
    report.stored += len(receipts.stored)
    report.duplicates += len(receipts.duplicates)
    rest: list[dict[str, Any]] = []
    owners: list[tuple[int, int]] = []
    for i, (case, mapped) in enumerate(pending):
        if i in refused:
            fail(_error(source, mapping, case, refused[i], mapped.lines[0], mapped.dossier_id))
            continue
        for j in range(1, len(mapped.envelopes)):
            rest.append(mapped.envelopes[j])
            owners.append((i, j))
    result = ledger.append_batch(rest, dry_run=dry_run, overlay=overlay)
    report.stored += len(result.stored)
    report.duplicates += len(result.duplicates)
    failed = set(refused)
    for rej in result.rejected:
        i, j = owners[rej.index]
        case, mapped = pending[i]
        failed.add(i)
        fail(_error(source, mapping, case, rej.reason, mapped.lines[j], mapped.dossier_id))
    report.imported += len(pending) - len(failed)


def write_rejects(errors: list[CaseError], out: IO[str]) -> None:
    """One JSON object per case not imported: where, which case, why."""
    for err in errors:
        out.write(orjson.dumps(err.as_dict()).decode() + "\n")


__all__ = ["CaseError", "ImportReport", "LogError", "import_log", "write_rejects"]
