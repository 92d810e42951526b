"""The embedded runner: the stream processors in-process over the ledger's log.

``dossier process`` reads the notification log in pages from its checkpoint, feeds
the :class:`~streams.pipeline.Pipeline`, and hands each page to its store (a
:class:`Store`; ``analytics.stream_store`` writes it to ``analytics.duckdb`` in one
transaction), which also keeps the checkpoint and the processors' states. The runner
never opens a database itself: ``system.process`` wires it.

Time: the watermark is the latest business time less the allowed lateness; at the
end of the log ``now`` pushes it further (judge the open dossiers at an instant);
with ``follow`` the wall clock pushes it too, so an idle office still sees
deadlines pass. ``replayed`` alerts are those fired more than the replay horizon
before the reference instant (``now``, else the wall clock): they are recorded,
and not delivered unless asked.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ledger.domain.events import Recorded
from streams.pipeline import Pipeline

PUBLISH_EVERY = 30.0
"""Seconds between readers' snapshots while catching up (copying the file each page
would cost a tenth of the run); once caught up, after every poll that wrote."""
PROVISIONAL_EVERY = 2.0
"""Seconds between provisional rows while catching up (and always once caught up)."""


class Log(Protocol):
    """The ledger as the runner reads it."""

    def read(self, after: int = 0, limit: int = 1000) -> list[Recorded]: ...

    def max_position(self) -> int: ...


class Outbox(Protocol):
    def deliver(self) -> dict[str, int]: ...

    def pending(self) -> int: ...


class Store(Protocol):
    """Where a page's outputs, the processors' states and the checkpoint go, together."""

    outbox: Outbox | None

    def write(
        self, taken: dict[str, Any], position: int, pipeline: Pipeline, records: list[Any]
    ) -> None: ...

    def publish(self) -> None:
        """Let readers see what was written (paced by the runner)."""
        ...

    def counts(self) -> dict[str, dict[str, int]]: ...


def run(
    log: Log,
    store: Store,
    pipeline: Pipeline,
    position: int,
    *,
    now: datetime | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
    page: int = 5000,
    poll: float = 1.0,
    deliver: bool = True,
) -> dict[str, Any]:
    """Catch up with the log after ``position`` (and, with ``follow``, keep going);
    return a summary. ``pipeline`` and ``position`` are where the store's checkpoint left
    them (``system.process`` restores both).

    With ``deliver`` and an outbox in the store, alerts are sent as they fire and, at
    the end of a run, until every delivery has succeeded or run out of retries."""
    stop = stop or threading.Event()
    delivered = Counter[str]()
    last_provisional = last_publish = time.monotonic()
    unpublished = True  # a first snapshot even when there is nothing new
    total = log.max_position()
    new_events = 0
    written = Counter[str]()
    while not stop.is_set():
        records = log.read(position, page)
        reference = now or datetime.now(UTC)
        for rec in records:
            pipeline.feed(rec, reference)
        idle = not records
        if idle:
            if now is not None:
                pipeline.push(now, reference)
            if follow:
                pipeline.push(datetime.now(UTC), reference)
        if records or idle:
            position = records[-1].position if records else position
            fresh = idle or time.monotonic() - last_provisional >= PROVISIONAL_EVERY
            if fresh:
                last_provisional = time.monotonic()
            taken = pipeline.take(provisional=fresh)
            if records or any(
                taken[k] for k in ("signals", "alerts", "metrics_daily", "dossiers", "keys")
            ):
                store.write(taken, position, pipeline, records)
                unpublished = True
                for k in ("signals", "alerts", "metrics_daily"):
                    written[k] += len(taken[k])
        new_events += len(records)
        if unpublished and (idle or time.monotonic() - last_publish >= PUBLISH_EVERY):
            store.publish()  # readers' snapshot: caught up, or every half minute
            last_publish, unpublished = time.monotonic(), False
        if store.outbox is not None and deliver:
            delivered.update(store.outbox.deliver())
        if progress is not None and records:
            progress(position, max(total, position))
        if idle:
            if not follow:
                break
            stop.wait(poll)
    while store.outbox is not None and deliver and store.outbox.pending() and not stop.is_set():
        delivered.update(store.outbox.deliver())  # the end of a run: retries run out
        stop.wait(0.2)
    wm = pipeline.wm.current
    summary: dict[str, Any] = {
        "events": new_events,
        "position": position,
        "watermark": None if wm is None else wm.isoformat(),
        "final_through": pipeline.final,
        "open_states": len(pipeline.dossiers),
        "ignored_after_retention": pipeline.ignored,
        **store.counts(),
        "written": dict(written),
    }
    if store.outbox is not None:
        summary["deliveries"] = dict(delivered)
    return summary
