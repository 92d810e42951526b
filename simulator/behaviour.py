"""Behaviour of officials: pace profiles, misconduct traits and the rates that drive them.

A minority of officials carries one misconduct trait; each time the trait has an
opportunity (a dossier the official touches) it acts with the trait's rate.
Every act is written to the labels file by the scenario, as are the
irregularities that arise on their own (a slow official overrunning a budget).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

PACES = ("brisk", "steady", "slow")

# trait -> (roles that can carry it, label kind it produces)
TRAITS: dict[str, tuple[tuple[str, ...], str]] = {
    "sits_at_desk": (("receiver",), "late_forwarding"),
    "off_duty": (("receiver",), "off_duty_receipt"),
    "stale_forms": (("receiver",), "superseded_procedure"),
    "double_hat": (("receiver",), "same_official_receive_approve"),
    "extra_documents": (("appraiser",), "unlisted_document_requested"),
    "piecemeal": (("appraiser",), "repeated_supplement"),
    "late_supplement": (("appraiser",), "late_supplement_request"),
    "bouncer": (("appraiser",), "ping_pong"),
    "pushes_to_paper": (("appraiser",), "online_to_paper"),
    "sitter": (("appraiser", "approver"), "idle_beyond_allotment"),
    "backdater": (("appraiser", "approver"), "backdated_event"),
    "curt_refusal": (("approver",), "refusal_without_reason"),
    "no_apology": (("agency_head",), "late_without_apology"),
    "serial_apology": (("agency_head",), "repeated_apology"),
}

DEFAULT_ACT_RATES: dict[str, float] = {
    "sits_at_desk": 0.5,
    "off_duty": 0.6,
    "stale_forms": 0.5,
    "double_hat": 0.2,
    "extra_documents": 0.4,
    "piecemeal": 0.5,
    "late_supplement": 0.5,
    "bouncer": 0.4,
    "pushes_to_paper": 0.8,
    "sitter": 0.35,
    "backdater": 0.3,
    "curt_refusal": 0.15,
    "no_apology": 1.0,
    "serial_apology": 1.0,
}
"""Trait -> probability that it acts at each opportunity (a dossier the official touches)."""

DEFAULT_TRAIT_OFFICIALS: dict[str, int] = {
    **{trait: 4 for trait in TRAITS},
    "sitter": 16,
    "pushes_to_paper": 8,
    "no_apology": 20,
    "serial_apology": 10,
}
"""Trait -> how many officials carry it (of ~450; a head's trait applies to its whole office)."""


@dataclass(frozen=True)
class Params:
    """Everything a simulated province is tuned by; the defaults land the on-time rate
    near the real 96-99 % range."""

    dossiers_per_day: float = 300.0
    """Mean dossiers received per ordinary working day (before weekday/Tết factors)."""
    trait_officials: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_TRAIT_OFFICIALS)
    )
    """Trait -> how many officials carry it (all zero: a province with no misconduct)."""
    act_rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ACT_RATES))
    """Trait -> probability that the trait acts at each opportunity."""
    slow_share: float = 0.10
    brisk_share: float = 0.30
    online_share: float = 0.35
    postal_share: float = 0.05
    supplement_rate: float = 0.06
    supplement_abandon_rate: float = 0.08
    consultation_rate: float = 0.6
    """Share of dossiers of a consulting procedure that do consult."""
    refusal_rate: float = 0.03
    withdrawal_rate: float = 0.01
    feedback_rate: float = 0.25
    complaint_rate: float = 0.02
    repeat_applicant_rate: float = 0.15
    online_to_paper_window_days: int = 30
    """A paper filing this many days after an online setback of the same applicant and
    procedure is an ``online_to_paper`` irregularity (signal 12's N)."""
    level_shares: Mapping[str, float] = field(
        default_factory=lambda: {"commune": 0.55, "district": 0.2, "province": 0.25}
    )

    def act_rate(self, trait: str | None) -> float:
        return 0.0 if trait is None else float(self.act_rates.get(trait, 0.0))


def pace_factor(rng: random.Random, pace: str) -> float:
    """Share of a step budget an official of this pace uses (slow ones sometimes overrun)."""
    if pace == "brisk":
        return rng.uniform(0.1, 0.5)
    if pace == "slow":
        return rng.uniform(0.4, 1.25)
    return rng.uniform(0.15, 0.8)


def sitting_factor(rng: random.Random) -> float:
    """Share of the budget used by an official sitting on a dossier."""
    return rng.uniform(1.4, 4.0)
