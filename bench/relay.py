"""Relay throughput (store -> broker) beside the raw kafka-python producer, same run.

Figures (``--json`` prints them as one JSON object on the last line):

* ``relay_events_per_s``: ``Relay.drain()`` from a SQLite ledger to a fresh
  12-partition topic: read pages from the store, serialize with orjson, send,
  flush and wait for every ack per page, write the cursor;
* ``raw_events_per_s``: a bare kafka-python producer (same settings: acks=all,
  idempotent, same linger and batch size) sending the very same key/value/header
  bytes, prepared beforehand, then one flush;
* ``relay_vs_raw_ratio``: relay / raw (target >= 0.8).

Starts its own Tansu broker unless ``--bootstrap`` is given.

Usage: python bench/relay.py [--quick] [--json] [--dossiers N] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

from ledger.bootstrap import open_ledger
from ledger.config import Settings
from ledger.kafka import encode_event, ensure_topics, make_producer
from ledger.relay import Relay
from ledger.testing.factories import event_stream
from ledger.testing.tansu import running_tansu


def raw_rate(bootstrap: str, messages: list, linger_ms: int) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, names=[topic])
    producer = make_producer(bootstrap, linger_ms=linger_ms)
    producer.send(topic, key=b"warm-up", value=b"{}").get(timeout=30)
    start = time.perf_counter()
    for key, value, headers in messages:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return len(messages) / elapsed


def relay_rate(bootstrap: str, ledger, linger_ms: int, page: int) -> tuple[float, int]:
    topic = f"bench-relay-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, names=[topic])
    producer = make_producer(bootstrap, linger_ms=linger_ms)
    producer.send(topic, key=b"warm-up", value=b"{}").get(timeout=30)
    cursor = f"bench-{topic}"
    relay = Relay(ledger, producer, topic=topic, cursor=cursor, page=page)
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
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (best kept)")
    args = parser.parse_args()
    dossiers = args.dossiers or (2500 if args.quick else 12_000)
    rounds = args.rounds or (2 if args.quick else 3)

    with tempfile.TemporaryDirectory() as tmp:
        ledger = open_ledger(Settings.from_env(Path(tmp)))
        envelopes = event_stream(dossiers, seed=5)
        for i in range(0, len(envelopes), 2000):
            ledger.append_batch(envelopes[i : i + 2000])
        messages = [encode_event(rec) for rec in ledger.iter_all()]
        broker = nullcontext(args.bootstrap) if args.bootstrap else running_tansu()
        with broker as bootstrap:
            raws, relays = [], []
            for r in range(rounds):  # alternate, so drift in the broker hurts both alike
                raws.append(raw_rate(bootstrap, messages, args.linger_ms))
                rate, published = relay_rate(bootstrap, ledger, args.linger_ms, args.page)
                assert published == len(messages), (published, len(messages))
                relays.append(rate)
                print(
                    f"round {r + 1}: raw {raws[-1]:,.0f} ev/s, relay {relays[-1]:,.0f} ev/s",
                    file=sys.stderr,
                )
    figures = {
        "events": len(messages),
        "avg_value_bytes": round(sum(len(v) for _, v, _ in messages) / len(messages)),
        "page": args.page,
        "linger_ms": args.linger_ms,
        "rounds": rounds,
        "raw_events_per_s": round(max(raws)),
        "relay_events_per_s": round(max(relays)),
        "relay_vs_raw_ratio": round(max(relays) / max(raws), 3),
    }
    if not args.json:
        print(
            f"{figures['events']} events: relay {figures['relay_events_per_s']:,} ev/s, "
            f"raw producer {figures['raw_events_per_s']:,} ev/s, "
            f"ratio {figures['relay_vs_raw_ratio']}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
