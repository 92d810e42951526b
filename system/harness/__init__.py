"""The distributed path on one machine, for tests and benches (never imported by a command).

``tansu`` (a memory-only Kafka-protocol broker), ``topic`` (read a topic back, dedupe as
consumers do), ``crash`` (SIGKILL the relay at random moments while ingesting),
``distributed`` (writers, relay, projection and stream workers at once, at scale).
"""
