"""The relay: every committed ledger event, in ledger order, onto ``dossier.events``.

The relay reads the event store's notification log (``ledger.read(after, limit)``)
page by page from the last position Kafka acknowledged, sends each event with an
``acks=all``, idempotent kafka-python producer (key = dossier id, so one dossier's
events stay ordered in one partition), waits for the broker to acknowledge the
whole page, and only then records the highest position of the acknowledged,
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ledger import topics
from ledger.kafka import encode_event

if TYPE_CHECKING:
    from kafka import KafkaProducer

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
    """Publishes the ledger's events to Kafka and keeps the acked position in the store."""

    def __init__(
        self,
        ledger: DossierLedger,
        producer: KafkaProducer,
        *,
        topic: str = topics.EVENTS,
        cursor: str = CURSOR,
        page: int = PAGE,
        ack_timeout: float = 120.0,
    ) -> None:
        self.ledger = ledger
        self.producer = producer
        self.topic = topic
        self.cursor = cursor
        self.page = page
        self.ack_timeout = ack_timeout

    def acknowledged(self) -> int:
        """The last position Kafka acknowledged (0 before the first run)."""
        return self.ledger.get_cursor(self.cursor)

    def publish_page(self, after: int) -> tuple[int, int]:
        """Send the events after ``after`` (one page), wait for their acks, move the cursor.

        Returns (records published, new acknowledged position).
        """
        batch = self.ledger.read(after, self.page)
        if not batch:
            return 0, after
        from kafka.errors import KafkaError

        send = self.producer.send
        topic = self.topic
        futures = []
        refused: tuple[Any, BaseException] | None = None
        for rec in batch:
            key, value, headers = encode_event(rec)
            try:
                futures.append(send(topic, key=key, value=value, headers=headers))
            except KafkaError as e:  # refused before sending (e.g. too large)
                refused = (rec, e)
                break
        self.producer.flush(timeout=self.ack_timeout)
        acked = after
        for rec, fut in zip(batch, futures, strict=False):
            if not fut.is_done or fut.failed():
                refused = (rec, fut.exception if fut.is_done else "no acknowledgement in time")
                break
            acked = rec.position
        if acked > after:
            self.ledger.set_cursor(self.cursor, acked)
        if refused is not None:
            # Keep the acknowledged prefix; the rest is resent on the next run.
            rec, reason = refused
            raise RelayError(
                f"position {rec.position} (dossier {rec.dossier_id}) not acknowledged "
                f"by Kafka: {reason}; cursor left at {acked}"
            )
        return len(batch), acked

    def drain(self, on_page: Callable[[RelayReport], None] | None = None) -> RelayReport:
        """Publish everything committed so far, then return (``dossier relay --once``)."""
        report = RelayReport(acknowledged=self.acknowledged())
        while True:
            n, acked = self.publish_page(report.acknowledged)
            if n == 0:
                break
            report.published += n
            report.pages += 1
            report.acknowledged = acked
            if on_page:
                report.position = self.ledger.max_position()
                on_page(report)
        report.position = self.ledger.max_position()
        return report

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
            if report.published == 0:
                stop.wait(poll_interval)
        return total

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
