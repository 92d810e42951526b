"""Test envelopes (re-exported from :mod:`ledger.testing.factories`, which benches import too)."""

from ledger.testing.factories import (  # noqa: F401
    AGENCIES,
    START,
    dossier_life,
    envelope,
    event_stream,
    write_jsonl,
)
