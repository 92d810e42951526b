"""The kinds of irregularity the system flags (domain brief §8), by their code names.

The simulator writes them in its labels, the stream detectors emit them, and
subscriptions and the analytics store name them; a module of their own in the pure
core, so that every room takes the one list from below instead of from another room
(production code never imports the simulator).
"""

from __future__ import annotations

KINDS = (
    "repeated_supplement",
    "unlisted_document_requested",
    "late_supplement_request",
    "late_without_apology",
    "repeated_apology",
    "idle_beyond_allotment",
    "late_forwarding",
    "ping_pong",
    "superseded_procedure",
    "backdated_event",
    "same_official_receive_approve",
    "refusal_without_reason",
    "off_duty_receipt",
    "online_to_paper",
)
"""The per-dossier signal kinds of the domain brief (§8), as written in labels."""

ALERT_KINDS = ("deadline", "low_on_time_rate", "refusal_burst", "harassment")
"""The alert kinds a subscriber can ask for: deadline alerts, and the alerts of §8 about
an official (refusal bursts, harassment) or an agency or procedure (low on-time rate)."""
