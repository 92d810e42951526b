"""Relay throughput (store -> broker) beside the raw producer and the bulk ingest, same run.

Figures (``--json`` prints them as one JSON object on the last line):

* ``ingest_events_per_s``: ``ingest_lines`` (what ``dossier ingest`` runs) of the
  very same events as JSON Lines into a fresh SQLite ledger;
* ``relay_events_per_s``: ``Relay.drain()`` from that ledger to a fresh
  12-partition topic: read pages from the store, serialize with orjson, send
  (two pages in flight), wait for every ack per page, write the cursor;
* ``raw_events_per_s``: a bare producer of the same client and settings
  (acks=all, idempotent, same linger and batch size) sending the same
  key/value/header bytes, prepared beforehand, then waiting for every ack;
* ``relay_vs_raw_ratio`` (target >= 0.8) and ``relay_vs_ingest_ratio``
  (target >= 1.0: the relay keeps up with a bulk load);
* ``relay_kafka_python_events_per_s``: the same relay with the kafka-python
  client, for the record of why confluent-kafka is the default.

Starts its own Tansu broker unless ``--bootstrap`` is given.

Usage: python bench/relay.py [--quick] [--json] [--dossiers N] [--client confluent|kafka-python]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

import orjson

from ledger.bootstrap import open_ledger
from ledger.ingest import ingest_lines
from ledger.kafka import encode_event, ensure_topics, make_producer
from ledger.relay import Relay
from ledger.settings import Settings
from simulator.factories import event_stream
from system.harness.tansu import running_tansu


def ingest_rate(tmp: Path, jsonl: bytes) -> tuple[float, object]:
    ledger = open_ledger(Settings.from_env(tmp))
    start = time.perf_counter()
    report = ingest_lines(ledger, io.BytesIO(jsonl), source="bench")
    elapsed = time.perf_counter() - start
    assert not report.errors, report.errors[:3]
    return report.stored / elapsed, ledger


def raw_rate(bootstrap: str, client: str, messages: list, linger_ms: int) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, names=[topic])
    producer = make_producer(bootstrap, client, linger_ms=linger_ms)
    producer.wait(producer.send(topic, [(b"warm-up", b"{}", [])]), 30)
    start = time.perf_counter()
    n, reason = producer.wait(producer.send(topic, messages), 120)
    elapsed = time.perf_counter() - start
    producer.close()
    assert n == len(messages), reason
    return len(messages) / elapsed


def relay_rate(bootstrap: str, client: str, ledger, linger_ms: int, page: int) -> tuple[float, int]:
    topic = f"bench-relay-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, names=[topic])
    producer = make_producer(bootstrap, client, linger_ms=linger_ms)
    producer.wait(producer.send(topic, [(b"warm-up", b"{}", [])]), 30)
    relay = Relay(ledger, producer, topic=topic, cursor=f"bench-{topic}", page=page)
    start = time.perf_counter()
    report = relay.drain()
    elapsed = time.perf_counter() - start
    producer.close()
    return report.published / elapsed, report.published


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (< 30 s)")
    parser.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    parser.add_argument("--dossiers", type=int, default=None)
    parser.add_argument("--bootstrap", default=None, help="an existing broker (default: Tansu)")
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--linger-ms", type=int, default=20)
    parser.add_argument("--client", default="confluent", choices=["confluent", "kafka-python"])
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (best kept)")
    args = parser.parse_args()
    dossiers = args.dossiers or (2500 if args.quick else 12_000)
    rounds = args.rounds or (2 if args.quick else 3)

    envelopes = event_stream(dossiers, seed=5)
    jsonl = b"".join(orjson.dumps(e) + b"\n" for e in envelopes)
    ingests, raws, relays = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        broker = nullcontext(args.bootstrap) if args.bootstrap else running_tansu()
        with broker as bootstrap:
            ledger = None
            for r in range(rounds):  # alternate, so drift in the machine hurts all alike
                rate, ledger = ingest_rate(Path(tmp) / f"ingest-{r}", jsonl)
                ingests.append(rate)
                messages = [encode_event(rec) for rec in ledger.iter_all()]
                raws.append(raw_rate(bootstrap, args.client, messages, args.linger_ms))
                rate, published = relay_rate(
                    bootstrap, args.client, ledger, args.linger_ms, args.page
                )
                assert published == len(messages), (published, len(messages))
                relays.append(rate)
                print(
                    f"round {r + 1}: ingest {ingests[-1]:,.0f} ev/s, raw {raws[-1]:,.0f} ev/s, "
                    f"relay {relays[-1]:,.0f} ev/s",
                    file=sys.stderr,
                )
            other = "kafka-python" if args.client == "confluent" else "confluent"
            other_rate, _ = relay_rate(bootstrap, other, ledger, args.linger_ms, args.page)
            print(f"relay with {other}: {other_rate:,.0f} ev/s", file=sys.stderr)
    figures = {
        "events": len(messages),
        "avg_value_bytes": round(sum(len(v) for _, v, _ in messages) / len(messages)),
        "client": args.client,
        "page": args.page,
        "linger_ms": args.linger_ms,
        "rounds": rounds,
        "ingest_events_per_s": round(max(ingests)),
        "raw_events_per_s": round(max(raws)),
        "relay_events_per_s": round(max(relays)),
        "relay_vs_raw_ratio": round(max(relays) / max(raws), 3),
        "relay_vs_ingest_ratio": round(max(relays) / max(ingests), 3),
        f"relay_{other.replace('-', '_')}_events_per_s": round(other_rate),
    }
    if not args.json:
        print(
            f"{figures['events']} events: relay {figures['relay_events_per_s']:,} ev/s "
            f"({args.client}), raw producer {figures['raw_events_per_s']:,} ev/s, "
            f"bulk ingest {figures['ingest_events_per_s']:,} ev/s; "
            f"relay/raw {figures['relay_vs_raw_ratio']}, "
            f"relay/ingest {figures['relay_vs_ingest_ratio']}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
