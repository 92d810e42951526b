"""Test envelopes (re-exported from :mod:`simulator.factories`, which benches import too)."""

from simulator.factories import (  # noqa: F401
    AGENCIES,
    START,
    dossier_life,
    envelope,
    event_stream,
    write_jsonl,
)
