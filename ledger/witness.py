"""Independent witnesses of the log: the relay's copy on Kafka, and a series of signed digests.

A rewrite that recomputes the altered event's hash (and its successors') leaves
every chain consistent: ``verify --all`` cannot see it. Two witnesses the
database's operator does not control can:

* ``dossier.events``: the relay published each event, hash included, when it
  was committed. :func:`compare_with_topic` reads the topic back and names every
  stored event whose hash differs from its published copy, every published
  event missing from the store, and every stored event up to the topic's last
  position that was never published.
* a folder of signed digests: :func:`check_series` checks each digest's
  signature and root in one pass, and the first that no longer holds bounds the
  tampered range of positions.

Memory: the topic's hashes are held as 32 bytes per position in one bytearray
(8.6 MB for 270k events), plus one byte per position to mark it seen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ledger import topics
from ledger.audit import DigestError, check_digests, load_digests, validate_digest
from ledger.domain.hashchain import Problem
from ledger.kafka import partition_counts, require_topics
from ledger.signing import SignatureError, verify_signature

if TYPE_CHECKING:
    from ledger.application import DossierLedger


@dataclass
class WitnessReport:
    """What the comparison covered, beside the problems it found."""

    records_read: int = 0
    witnessed_upto: int = 0
    compared: int = 0
    unwitnessed: int = 0
    """Stored events after the topic's last position (not yet relayed)."""
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"witness {topics.EVENTS}: {self.records_read} records read, positions up to "
            f"{self.witnessed_upto}; {self.compared} stored events compared, "
            f"{self.unwitnessed} not yet relayed"
        )


class _Hashes:
    """Published hash per position: 32 bytes each in one growing bytearray."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.seen = bytearray()
        self.conflicts: list[tuple[int, str, str]] = []
        self.bad: list[tuple[int, int, str]] = []
        """(partition, offset, why) of records that are not relayed events."""

    def put(self, position: int, digest: bytes) -> None:
        if position >= len(self.seen):
            grow = max(position + 1 - len(self.seen), len(self.seen) // 2, 1024)
            self.seen.extend(bytes(grow))
            self.data.extend(bytes(32 * grow))
        at = 32 * position
        if self.seen[position]:
            old = bytes(self.data[at : at + 32])
            if old != digest:  # two different copies of one position on the witness
                self.conflicts.append((position, old.hex(), digest.hex()))
            return
        self.seen[position] = 1
        self.data[at : at + 32] = digest

    def get(self, position: int) -> bytes | None:
        if position < len(self.seen) and self.seen[position]:
            return bytes(self.data[32 * position : 32 * position + 32])
        return None


def read_witness(
    bootstrap: str, topic: str = topics.EVENTS, *, idle: float = 3.0, deadline: float = 600.0
) -> tuple[_Hashes, int, int]:
    """Every (position, hash) on ``topic``: (hashes, records read, highest position).

    Reads each partition from its beginning (confluent-kafka, partitions
    assigned, no group) until librdkafka signals the partition's end, which it
    takes from the high watermark returned with fetched data, never from the
    reported end offsets some brokers under-state; or until nothing arrived for
    ``idle`` seconds.
    """
    import uuid

    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as TP

    require_topics(bootstrap, [topic])
    partitions = partition_counts(bootstrap, [topic])[topic]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"dossier-witness-{uuid.uuid4().hex[:8]}",  # never joined or committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "allow.auto.create.topics": False,
            "queued.max.messages.kbytes": 16384,  # prefetch per partition: memory stays small
        }
    )
    hashes, read, top = _Hashes(), 0, 0
    try:
        consumer.assign([TP(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        ended: set[int] = set()
        end, last_data = time.monotonic() + deadline, time.monotonic()
        while len(ended) < partitions and time.monotonic() < end:
            batch = consumer.consume(num_messages=10_000, timeout=0.3)
            if not batch:
                if time.monotonic() - last_data > idle:
                    break
                continue
            last_data = time.monotonic()
            for m in batch:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        ended.add(m.partition())
                        continue
                    raise KafkaException(err)
                read += 1
                try:
                    obj = orjson.loads(m.value())
                    position, digest = int(obj["position"]), bytes.fromhex(obj["hash"])
                    if position < 1 or len(digest) != 32:
                        raise ValueError(f"position {position}, hash of {len(digest)} bytes")
                except (ValueError, KeyError, TypeError) as e:  # not a relayed event
                    hashes.bad.append((m.partition(), m.offset(), f"{type(e).__name__}: {e}"))
                    continue
                hashes.put(position, digest)
                top = max(top, position)
    finally:
        consumer.close()
    return hashes, read, top


def compare_with_topic(
    ledger: DossierLedger, bootstrap: str, topic: str = topics.EVENTS, *, idle: float = 3.0
) -> WitnessReport:
    """Name every stored event whose hash differs from the copy the relay published."""
    hashes, read, top = read_witness(bootstrap, topic, idle=idle)
    report = WitnessReport(records_read=read, witnessed_upto=top)
    stored_positions = bytearray(top + 1)
    for rec in ledger.iter_all():
        if rec.position > top:
            report.unwitnessed += 1
            continue
        stored_positions[rec.position] = 1
        published = hashes.get(rec.position)
        stored = rec.envelope.get("hash")
        eid = rec.envelope.get("event_id")
        if published is None:
            report.problems.append(
                Problem(
                    "inserted",
                    rec.dossier_id,
                    rec.position,
                    rec.version,
                    eid,
                    f"not on {topic}, which holds events up to position {top}",
                )
            )
            continue
        report.compared += 1
        if not isinstance(stored, str) or stored != published.hex():
            report.problems.append(
                Problem(
                    "altered",
                    rec.dossier_id,
                    rec.position,
                    rec.version,
                    eid,
                    f"stored hash {str(stored)[:16]}… differs from the copy on {topic}: "
                    f"{published.hex()[:16]}…",
                )
            )
    for position in range(1, top + 1):
        if hashes.get(position) is not None and not stored_positions[position]:
            report.problems.append(
                Problem(
                    "deleted",
                    "?",
                    position,
                    None,
                    None,
                    f"published on {topic} (hash {hashes.get(position).hex()[:16]}…) "
                    "but not in the store",
                )
            )
    for position, first, other in hashes.conflicts:
        report.problems.append(
            Problem(
                "altered",
                "?",
                position,
                None,
                None,
                f"{topic} itself holds two different copies: {first[:16]}… and {other[:16]}…",
            )
        )
    acknowledged = ledger.get_cursor("relay") if topic == topics.EVENTS else 0
    if acknowledged > top:
        report.problems.append(
            Problem(
                "deleted",
                "*",
                top + 1,
                None,
                None,
                f"the relay recorded Kafka's acknowledgement up to position {acknowledged}, but "
                f"{topic} holds positions only up to {top}: records were removed from the "
                "witness (retention?) or this is another cluster",
            )
        )
    for partition, offset, why in hashes.bad:
        report.problems.append(
            Problem(
                "unreadable",
                "?",
                None,
                None,
                None,
                f"{topic}[{partition}]@{offset} is not a relayed event ({why}): "
                "only the relay may write to the witness",
            )
        )
    return report


@dataclass
class SeriesReport:
    checked: int
    held: int
    first_broken: Path | None
    tampered: tuple[int, int] | None
    problems: list[Problem]

    def summary(self) -> str:
        if self.first_broken is None:
            return f"digests: all {self.checked} hold"
        lo, hi = self.tampered or (0, 0)
        return (
            f"digests: {self.held} of {self.checked} hold; first broken: {self.first_broken.name}: "
            f"the log was changed at a position in ({lo}, {hi}]"
        )


def check_series(
    ledger: DossierLedger, directory: Path, public_key: str | None = None
) -> SeriesReport:
    """Check every digest in ``directory`` (signatures too, given a public key).

    A digest whose signature does not verify is refused (SignatureError naming
    the file): a forged digest proves nothing either way.
    """

    loaded = load_digests(directory)
    if public_key is not None:
        for path, digest in loaded:
            try:
                verify_signature(digest, public_key)
            except SignatureError as e:
                raise SignatureError(f"{path}: {e}") from None
    result = check_digests(ledger, [d for _, d in loaded])
    paths = {id(d): p for p, d in loaded}
    first = result.first_broken
    problems = []
    for digest, found in result.broken:
        name = paths[id(digest)].name
        problems.extend(
            Problem(p.kind, p.dossier_id, p.position, p.version, p.event_id, f"{name}: {p.detail}")
            for p in found
        )
    return SeriesReport(
        checked=len(loaded),
        held=len(result.held),
        first_broken=paths[id(first)] if first is not None else None,
        tampered=result.tampered_range(),
        problems=problems,
    )


def load_digest_file(path: Path) -> dict[str, Any]:
    """One digest file (DigestError naming the file if it is not one)."""

    try:
        return validate_digest(orjson.loads(path.read_bytes()))
    except ValueError as e:
        raise DigestError(f"{path}: not a digest: {e}") from None
