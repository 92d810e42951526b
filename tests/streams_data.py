"""A simulated province in a ledger, for the stream tests."""

from __future__ import annotations

import io

from ledger.bootstrap import open_ledger
from ledger.ingest import ingest_lines
from ledger.settings import Settings
from simulator import simulate


def simulated_ledger(settings: Settings, *, days: int, seed: int) -> list[dict]:
    """Simulate ``days`` days with ``seed`` into the settings' ledger; return the labels."""
    out, labels = io.StringIO(), io.StringIO()
    simulate(days, seed, out, labels)
    led = open_ledger(settings)
    try:
        report = ingest_lines(led, out.getvalue().encode().splitlines(keepends=True), source="sim")
        assert not report.errors, report.errors[:3]
    finally:
        led.close()
        led.keys.close()
    import json

    return [json.loads(line) for line in labels.getvalue().splitlines()]
