"""Progress of long commands: a rich bar on a terminal, plain lines otherwise.

One helper for every long step (ingest, rebuild, process, sink, demo): ::

    with progress.task("ingest", total=size, unit="bytes") as bar:
        for chunk in work:
            ...
            bar.advance(len(chunk))

A :class:`Task` is also a callable (``bar(n)`` advances by ``n``), so library
functions can take a plain ``progress: Callable[[int], None] | None`` and stay
free of any output. Output goes to stderr only, so stdout stays a clean result
(JSON, tables) that scripts can parse.

When stderr is not a terminal, a plain line is written at most every
``interval`` seconds, and a final line only if an earlier one was written: short
runs in tests and pipes stay silent. ``DOSSIER_PROGRESS`` (``Settings.progress``,
which the commands pass as ``forced``) forces a mode: ``bar``, ``plain`` or ``off``.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import IO, Any

PLAIN_INTERVAL = 5.0
"""Seconds between plain progress lines."""


def mode(stream: IO[str] | None = None, forced: str | None = None) -> str:
    """``bar``, ``plain`` or ``off``: ``forced`` (``DOSSIER_PROGRESS``) if it names one,
    else by the terminal."""
    forced = (forced or "").strip().lower()
    if forced in ("bar", "plain", "off"):
        return forced
    stream = stream if stream is not None else sys.stderr
    try:
        return "bar" if stream.isatty() else "plain"
    except (AttributeError, ValueError):  # closed or unusual streams
        return "plain"


def _amount(n: float, unit: str) -> str:
    if unit == "bytes":
        for size, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if n >= size:
                return f"{n / size:.1f} {suffix}"
        return f"{int(n)} B"
    return f"{int(n):,} {unit}".rstrip()


class Task:
    """One step's progress; a no-op in ``off`` mode."""

    def __init__(
        self,
        label: str,
        total: float | None = None,
        *,
        unit: str = "",
        stream: IO[str] | None = None,
        interval: float = PLAIN_INTERVAL,
        how: str | None = None,
        forced: str | None = None,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.completed = 0.0
        self._stream = stream if stream is not None else sys.stderr
        self._how = how or mode(self._stream, forced)
        self._interval = interval
        self._started = time.monotonic()
        self._last_line = self._started
        self._lines = 0
        self._rich: Any = None
        self._rich_id: Any = None
        if self._how == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._rich = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn() if unit != "bytes" else TextColumn(""),
                TextColumn("{task.percentage:>3.0f}%" if total else ""),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=False,
            )
            self._rich.start()
            self._rich_id = self._rich.add_task(label, total=total)

    def __call__(self, n: float = 1) -> None:
        self.advance(n)

    def advance(self, n: float = 1) -> None:
        self.update(self.completed + n)

    def update(self, completed: float, *, total: float | None = None) -> None:
        """Set the amount done (and the total, when it becomes known)."""
        self.completed = completed
        if total is not None:
            self.total = total
        if self._how == "bar":
            self._rich.update(self._rich_id, completed=completed, total=self.total)
        elif self._how == "plain":
            now = time.monotonic()
            if now - self._last_line >= self._interval:
                self._last_line = now
                self._line()

    def _line(self, final: bool = False) -> None:
        done = _amount(self.completed, self.unit)
        if self.total:
            pct = 100.0 * self.completed / self.total
            text = f"{self.label}: {done} of {_amount(self.total, self.unit)} ({pct:.0f}%)"
        else:
            text = f"{self.label}: {done}"
        elapsed = time.monotonic() - self._started
        text += f" in {elapsed:.1f} s" + (" - done" if final else "")
        print(text, file=self._stream, flush=True)
        self._lines += 1

    def close(self) -> None:
        if self._how == "bar" and self._rich is not None:
            self._rich.stop()
            self._rich = None
            self._how = "off"
        elif self._how == "plain" and self._lines:
            self._line(final=True)
            self._how = "off"

    def __enter__(self) -> Task:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def task(label: str, total: float | None = None, *, unit: str = "", **kwargs: Any) -> Task:
    """A progress task (use as a context manager); commands pass ``forced=settings.progress``."""
    return Task(label, total, unit=unit, **kwargs)


def file_size(path: str | os.PathLike[str]) -> int | None:
    """Size of a regular file, else None (pipes, stdin: no total)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat

    return st.st_size if stat.S_ISREG(st.st_mode) else None


class reading:  # noqa: N801 - used like a function: progress.reading(ledger, bar)
    """A log reader whose ``read(after, limit)`` moves ``bar`` to the last position read,
    out of the ledger's latest position: progress for runners that page through the log."""

    def __init__(self, ledger: Any, bar: Task) -> None:
        self._ledger, self._bar = ledger, bar
        self._total = ledger.max_position()

    def read(self, after: int = 0, limit: int = 1000, **kwargs: Any) -> list[Any]:
        batch = self._ledger.read(after, limit, **kwargs)
        if batch:
            position = batch[-1].position
            if position > self._total:
                self._total = self._ledger.max_position()
            self._bar.update(position, total=max(self._total, position))
        return batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)
