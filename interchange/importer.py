"""``dossier import``: a case log (XES or CSV) in, through a mapping, into the ledger.

Cases are read one at a time, mapped and judged whole (:func:`map_case`), and
appended in batches through the same validation and idempotency as ``dossier
ingest`` (``DossierLedger.append_batch``). Each batch first appends its cases'
receipts, then the rest of the cases whose receipt the ledger took (or already
had): a dossier the ledger already holds from elsewhere is reported, and none of
the case's events are added to it.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from interchange.cases import CaseRejected, LogError, MappedCase, SourceCase, map_case
from interchange.csvlog import RowError, read_csv
from interchange.mapping import Mapping
from interchange.xes import read_xes
from ledger.application import DossierLedger
from ledger.domain.rules import RuleBook

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


@dataclass
class _Item:
    """One case as mapped (or refused), or one CSV row that belongs to no case."""

    events: int
    error: CaseError | None = None
    mapped: MappedCase | None = None
    trace: int | None = None
    line: int | None = None
    name: str | None = None
    row: bool = False  # a CSV row of no case, not a case

    def pack(self) -> list[Any]:
        m = self.mapped
        return [
            self.row,
            self.events,
            None if self.error is None else self.error.as_dict(),
            None if m is None else [m.dossier_id, m.envelopes, m.lines, m.duplicate_rows],
            self.trace,
            self.line,
            self.name,
        ]

    @classmethod
    def unpack(cls, raw: list[Any]) -> _Item:
        row, events, error, mapped, trace, line, name = raw
        return cls(
            events,
            None if error is None else CaseError(**error),
            None if mapped is None else MappedCase(*mapped),
            trace,
            line,
            name,
            row,
        )


def _mapped(
    path: Path,
    mapping: Mapping,
    rules: RuleBook,
    progress: Callable[[int], None] | None = None,
) -> Iterator[_Item]:
    """Each case of the log, mapped and judged (pure work: no ledger access)."""
    source = str(path)
    for case in read_cases(path, mapping, progress):
        if isinstance(case, RowError):
            yield _Item(0, CaseError(source, case.reason, line=case.line), line=case.line, row=True)
            continue
        name = case.name
        if name is None and mapping.format == "csv":
            value = case.attrs.get(mapping.case)
            name = None if value is None else str(value)
        trace = case.index if mapping.format == "xes" else None
        item = _Item(len(case.events), trace=trace, line=case.line, name=name)
        try:
            item.mapped = map_case(case, mapping, rules)
        except CaseRejected as e:
            item.error = CaseError(
                source, e.reason, e.dossier_id or name, line=e.line or case.line, trace=trace
            )
        yield item


def spare_core() -> bool:
    """Whether a second process would get a core of its own: on a busy machine the
    reader process only competes with this one, and the hand-over costs more than
    it saves."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load = 0.0
    return cores > 1 and load <= cores  # this process itself counts for one


AHEAD = 32
"""Messages (of up to 100 cases) the reader process may be ahead of the ledger."""
PARALLEL_MIN_BYTES = 4 << 20
"""Logs at least this large are read and mapped in a second process while this one
appends, when a core is idle (the one-minute load average, this process included, is
at most the number of cores)."""


def import_log(
    ledger: DossierLedger,
    path: Path,
    mapping: Mapping,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    on_error: Callable[[CaseError], None] | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
) -> ImportReport:
    """Import every case of a log; report each case that could not be imported.

    ``parallel`` (default: for logs of 4 MiB or more, when a core is idle) reads
    and maps the log in a forked process that hands mapped
    cases over a pipe, in order; the outcome is the same. Raises
    :class:`LogError` if the log cannot be read on (the cases read before it are
    imported).
    """
    if parallel is None:
        parallel = path.stat().st_size >= PARALLEL_MIN_BYTES and spare_core()
    source = str(path)
    report = ImportReport()
    overlay: dict[str, Any] | None = {} if dry_run else None
    pending: list[_Item] = []
    size = 0

    def fail(err: CaseError) -> None:
        report.errors.append(err)
        if on_error is not None:
            on_error(err)

    def flush() -> None:
        nonlocal pending, size
        if pending:
            _append(ledger, pending, source, dry_run, overlay, report, fail)
        pending, size = [], 0

    items = (
        _mapped_elsewhere(path, mapping, ledger.rules, progress)
        if parallel
        else _mapped(path, mapping, ledger.rules, progress)
    )
    try:
        for item in items:
            if item.row:
                fail(item.error)  # type: ignore[arg-type]
                continue
            report.cases += 1
            report.events += item.events
            if item.mapped is None:
                fail(item.error)  # type: ignore[arg-type]
                continue
            report.duplicate_rows += item.mapped.duplicate_rows
            pending.append(item)
            size += len(item.mapped.envelopes)
            if size >= batch_size:
                flush()
    except LogError:
        flush()  # the cases read before the log broke off are imported
        raise
    else:
        flush()
    finally:
        items.close()  # type: ignore[attr-defined]  # stops the reader process, if any
    return report


def _mapped_elsewhere(
    path: Path,
    mapping: Mapping,
    rules: RuleBook,
    progress: Callable[[int], None] | None,
) -> Iterator[_Item]:
    """:func:`_mapped`, run in a forked process; items come back over a pipe in order.

    A thread of this process drains the pipe into a bounded queue (``AHEAD``
    messages), so the reader keeps mapping while the ledger appends a batch, yet
    never runs far ahead. The child touches no store (it only reads the log and
    the rules) and leaves with ``os._exit``.
    """
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_produce, args=(sender, path, mapping, rules), daemon=True)
    child.start()
    sender.close()
    inbox: queue.Queue[bytes | None] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                data: bytes | None = receiver.recv_bytes()
            except (EOFError, OSError):
                data = None
            while not stop.is_set():
                try:
                    inbox.put(data, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if data is None:
                return

    pumping = threading.Thread(target=pump, name="import-pipe", daemon=True)
    pumping.start()
    try:
        while True:
            data = inbox.get()
            if data is None:
                child.join(5)
                raise RuntimeError(
                    f"{path}: the reader process stopped (exit code {child.exitcode})"
                )
            message = orjson.loads(data)
            if progress is not None and message.get("progress"):
                progress(message["progress"])
            for raw in message.get("items", ()):
                yield _Item.unpack(raw)
            if "error" in message:
                raise LogError(message["error"])
            if "crash" in message:
                raise RuntimeError(f"{path}: the reader process failed: {message['crash']}")
            if message.get("done"):
                return
    finally:
        stop.set()
        if child.is_alive():
            child.terminate()
        child.join()
        pumping.join()
        receiver.close()


def _produce(sender: Any, path: Path, mapping: Mapping, rules: RuleBook) -> None:
    """The reader process: map the log and send the items in chunks."""
    chunk: list[list[Any]] = []
    read = [0]

    def count(n: int) -> None:
        read[0] += n

    def send(**extra: Any) -> None:
        sender.send_bytes(orjson.dumps({"items": chunk, "progress": read[0], **extra}))
        chunk.clear()
        read[0] = 0

    try:
        for item in _mapped(path, mapping, rules, count):
            chunk.append(item.pack())
            if len(chunk) >= 100:
                send()
        send(done=True)
    except LogError as e:
        send(error=str(e))
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
        send(crash=f"{type(e).__name__}: {e}")
    finally:
        sender.close()


def _append(
    ledger: DossierLedger,
    pending: list[_Item],
    source: str,
    dry_run: bool,
    overlay: dict[str, Any] | None,
    report: ImportReport,
    fail: Callable[[CaseError], None],
) -> None:
    mapped = [item.mapped for item in pending]
    receipts = ledger.append_batch(
        [m.envelopes[0] for m in mapped],  # type: ignore[union-attr]
        dry_run=dry_run,
        overlay=overlay,
    )
    refused = {r.index: r.reason for r in receipts.rejected}
    report.stored += len(receipts.stored)
    report.duplicates += len(receipts.duplicates)
    rest: list[dict[str, Any]] = []
    owners: list[tuple[int, int]] = []
    for i, m in enumerate(mapped):
        assert m is not None
        if i in refused:
            fail(_error(source, pending[i], refused[i], m.lines[0], m.dossier_id))
            continue
        for j in range(1, len(m.envelopes)):
            rest.append(m.envelopes[j])
            owners.append((i, j))
    result = ledger.append_batch(rest, dry_run=dry_run, overlay=overlay)
    report.stored += len(result.stored)
    report.duplicates += len(result.duplicates)
    failed = set(refused)
    for rej in result.rejected:
        i, j = owners[rej.index]
        m = mapped[i]
        assert m is not None
        failed.add(i)
        fail(_error(source, pending[i], rej.reason, m.lines[j], m.dossier_id))
    report.imported += len(pending) - len(failed)


def _error(source: str, item: _Item, reason: str, line: int | None, dossier_id: str) -> CaseError:
    if item.trace is not None:
        return CaseError(source, reason, dossier_id, trace=item.trace)
    return CaseError(source, reason, dossier_id, line=line or item.line)


def write_rejects(errors: list[CaseError], out: IO[str]) -> None:
    """One JSON object per case not imported: where, which case, why."""
    for err in errors:
        out.write(orjson.dumps(err.as_dict()).decode() + "\n")


__all__ = ["CaseError", "ImportReport", "LogError", "import_log", "write_rejects"]
