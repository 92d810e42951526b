"""The relay: every committed ledger event, in ledger order, onto ``dossier.events``.

The relay reads the event store's notification log (``ledger.read(after, limit)``)
page by page from the last position Kafka acknowledged, sends each event with an
``acks=all``, idempotent producer (confluent-kafka by default; key = dossier id,
so one dossier's events stay ordered in one partition), waits for the broker to
acknowledge the whole page (the next page is already on its way), and only then records the highest position of the acknowledged,
gap-free prefix as the cursor ``relay`` in the same store
(``ledger.set_cursor``). After a crash or a restart it resumes from that cursor.

Delivery guarantee: **at-least-once**. A crash between the broker's ack and the
cursor write resends the tail of a page, so a record may appear twice on the
topic, always with the same ledger ``position`` (and the same bytes). Every
consumer in this project deduplicates by ``position`` (per dossier the
positions are strictly increasing, so "skip if position <= the last seen one"
suffices). Nothing is ever lost: the cursor never passes an event the broker has
not acknowledged. Exactly-once (Kafka transactions) is deliberately not used:
it cannot be relied on across brokers (Tansu accepts the calls with no isolation),
and it would not cover the cursor in the store anyway.

Order: within a partition records arrive in ledger order, because the producer
is idempotent (a retried batch cannot overtake a later one, with at most 5
requests in flight) and the pages are sent in position order.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger import topics
from ledger.audit import RunningDigest, write_digest
from ledger.kafka import Message, Publisher, read_encoded
from ledger.signing import sign_digest

if TYPE_CHECKING:
    from ledger.application import DossierLedger

CURSOR = "relay"
PAGE = 5000


class RelayError(RuntimeError):
    """The broker refused or timed out a record; the cursor stops before it."""


@dataclass
class RelayReport:
    published: int = 0
    pages: int = 0
    acknowledged: int = 0
    position: int = 0

    @property
    def lag(self) -> int:
        return max(self.position - self.acknowledged, 0)

    def as_dict(self) -> dict[str, int]:
        return asdict(self) | {"lag": self.lag}


class Relay:
    """Publishes the ledger's events to Kafka and keeps the acked position in the store.

    Pages are pipelined: page n+1 is read and handed to the producer while page
    n is still being acknowledged, but the cursor only ever moves over a page
    whose every record (and every earlier page's) the broker acknowledged.
    """

    def __init__(
        self,
        ledger: DossierLedger,
        producer: Publisher,
        *,
        topic: str = topics.EVENTS,
        cursor: str = CURSOR,
        page: int = PAGE,
        ack_timeout: float = 120.0,
        in_flight: int = 2,
        on_acked: Callable[[int], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.producer = producer
        self.topic = topic
        self.cursor = cursor
        self.page = page
        self.ack_timeout = ack_timeout
        self.in_flight = max(1, in_flight)
        self.on_acked = on_acked
        """Called with the new cursor after each acknowledged page (e.g. digests)."""

    def acknowledged(self) -> int:
        """The last position Kafka acknowledged (0 before the first run)."""
        return self.ledger.get_cursor(self.cursor)

    def publish_page(self, after: int) -> tuple[int, int]:
        """Send the events after ``after`` (one page), wait for their acks, move the cursor.

        Returns (records published, new acknowledged position).
        """
        batch, messages = read_encoded(self.ledger, after, self.page)
        if not batch:
            return 0, after
        ticket = self.producer.send(self.topic, messages)
        return len(batch), self._settle(after, batch, ticket)

    def _settle(self, after: int, batch: list[tuple[int, str]], ticket: Any) -> int:
        """Wait for a page's acks; store the acknowledged gap-free prefix as the cursor."""
        n, reason = self.producer.wait(ticket, self.ack_timeout)
        acked = batch[n - 1][0] if n else after
        if acked > after:
            self.ledger.set_cursor(self.cursor, acked)
            if self.on_acked:
                self.on_acked(acked)
        if n < len(batch):
            # Keep the acknowledged prefix; the rest is resent on the next run.
            position, dossier_id = batch[n]
            raise RelayError(
                f"position {position} (dossier {dossier_id}) not acknowledged "
                f"by Kafka: {reason or 'refused'}; cursor left at {acked}"
            )
        return acked

    def drain(self, on_page: Callable[[RelayReport], None] | None = None) -> RelayReport:
        """Publish everything committed so far, then return (``dossier relay --once``)."""
        report = RelayReport(acknowledged=self.acknowledged())
        pending: deque[tuple[int, list[tuple[int, str]], Any]] = deque()
        sent_upto = report.acknowledged
        pages = self._pages(sent_upto)
        try:
            while True:
                page = next(pages, None)
                if page is not None:
                    where, messages = page
                    ticket = self.producer.send(self.topic, messages)
                    pending.append((sent_upto, where, ticket))
                    sent_upto = where[-1][0]
                if not pending:
                    break
                if len(pending) >= self.in_flight or page is None:
                    after, done, ticket = pending.popleft()
                    report.acknowledged = self._settle(after, done, ticket)
                    report.published += len(done)
                    report.pages += 1
                    if on_page:
                        report.position = self.ledger.max_position()
                        on_page(report)
        finally:
            pages.close()
            for _, _, ticket in pending:  # after a refusal: let the rest finish or fail
                self.producer.wait(ticket, 5.0)
        report.position = self.ledger.max_position()
        return report

    def _pages(self, after: int) -> Iterator[tuple[list[tuple[int, str]], list[Message]]]:
        """Encoded pages after ``after``, in position order, until the log is exhausted."""
        while True:
            where, messages = read_encoded(self.ledger, after, self.page)
            if not where:
                return
            yield where, messages
            after = where[-1][0]

    def follow(
        self,
        poll_interval: float = 1.0,
        stop: threading.Event | None = None,
        on_page: Callable[[RelayReport], None] | None = None,
    ) -> RelayReport:
        """Follow the store until ``stop`` is set, polling when caught up."""
        stop = stop or threading.Event()
        total = RelayReport()
        while not stop.is_set():
            report = self.drain(on_page)
            total.published += report.published
            total.pages += report.pages
            total.acknowledged, total.position = report.acknowledged, report.position
            if self.on_acked and report.acknowledged:
                self.on_acked(report.acknowledged)  # lets a due digest go out while idle
            if report.published == 0:
                stop.wait(poll_interval)
        return total


class DigestSchedule:
    """When the relay issues a signed digest: every ``every`` seconds and at each
    day's close (the first acknowledgement after midnight, Vietnam time), never
    twice for the same position. The wall clock is right here: this is an
    operating schedule, not business time."""

    def __init__(self, every: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.every = every
        self.clock = clock
        self.last_time: float | None = None
        self.last_position: int | None = None

    def due(self, position: int) -> bool:
        if position == self.last_position or position <= 0:
            return False
        if self.last_time is None:
            return True
        now = self.clock()
        return now - self.last_time >= self.every or _vn_date(now) != _vn_date(self.last_time)

    def issued(self, position: int) -> None:
        self.last_time, self.last_position = self.clock(), position


def _vn_date(t: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return (datetime.fromtimestamp(t, UTC) + timedelta(hours=7)).date()


class DigestIssuer:
    """Signs a digest of exactly what the relay got acknowledged, when due, and
    hands it to a digests folder and to the ``dossier.digests`` topic (one
    partition: the series in order). Kept up to date incrementally."""

    def __init__(
        self,
        ledger: DossierLedger,
        producer: Publisher | None,
        out_dir: Path,
        key_path: Path,
        schedule: DigestSchedule,
        *,
        topic: str = topics.DIGESTS,
    ) -> None:

        self.ledger = ledger
        self.producer = producer
        self.out_dir = out_dir
        self.key_path = key_path
        self.schedule = schedule
        self.topic = topic
        self.running = RunningDigest()
        self.issued: list[Path] = []

    def __call__(self, acknowledged: int) -> None:
        if not self.schedule.due(acknowledged):
            return
        self.issue(acknowledged)

    def issue(self, upto: int) -> Path:
        import orjson

        digest = sign_digest(self.running.advance(self.ledger, upto), self.key_path)
        path = write_digest(digest, self.out_dir)
        if self.producer is not None:
            value = orjson.dumps(digest, option=orjson.OPT_SORT_KEYS)
            headers = [("position", str(digest["position"]).encode())]
            ticket = self.producer.send(self.topic, [(b"digest", value, headers)])
            n, reason = self.producer.wait(ticket, 60.0)
            if n != 1:
                raise RelayError(
                    f"digest at position {upto} not acknowledged on {self.topic}: {reason}"
                )
        self.schedule.issued(upto)
        self.issued.append(path)
        return path

    def status(self) -> dict[str, Any]:
        return relay_status(self.ledger, self.cursor) | {"topic": self.topic}


def relay_status(ledger: DossierLedger, cursor: str = CURSOR) -> dict[str, Any]:
    """``position`` (store max), ``acknowledged`` (cursor) and ``lag`` (events, by position)."""
    position = ledger.max_position()
    acknowledged = ledger.get_cursor(cursor)
    return {
        "position": position,
        "acknowledged": acknowledged,
        "lag": max(position - acknowledged, 0),
        "cursor": cursor,
        "checked_at": time.time(),
    }


def log_page(report: RelayReport) -> None:
    """One JSON line per acknowledged page on stderr (the lag figure for log scrapers)."""
    import json

    print(json.dumps(report.as_dict(), sort_keys=True), file=sys.stderr, flush=True)
