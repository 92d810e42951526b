"""Misconduct signals (domain brief §8) as pure detectors driven by the stream.

The dossier processor (:mod:`streams.dossier`) calls :class:`Detectors` for every
event of a dossier and for every timer the detectors asked for; the keyed stage
(:mod:`streams.aggregates`) calls :class:`ApplicantDetector` (signals that span an
applicant's dossiers) and :class:`OfficialAlerts` (official-level alerts).

Contract (the processor relies on exactly this):

* ``Detectors.on_event(st, facts, rec, view)`` -> ``(signals, routed)``: ``st`` is this
  dossier's detector scratch (a JSON dict the detectors own and mutate; persisted
  between calls), ``facts`` the projection fact sheet *after* ``rec`` was folded,
  ``rec`` the :class:`~ledger.domain.events.Recorded`, ``view(now)`` the memoised
  ``projections.state.view(facts, rules, now)``. ``signals`` are
  ``streams.outputs.signal`` rows; ``routed`` is a list of ``(key, fact)`` pairs for
  the keyed stage (``"applicant:<pseudonym>"``, ``"officials"``).
* ``Detectors.timers(st, facts)`` -> ``[(instant, tag), ...]``: instants at which the
  detectors want :meth:`on_timer` called if no event of the dossier comes first
  (e.g. a step budget running out). The processor calls ``on_timer`` once the
  watermark passes the instant, or just before the dossier's next event that
  occurs after it, so the outcome never depends on when the runner got there.
* ``Detectors.on_timer(st, facts, tag, at, view)`` -> ``(signals, routed)``. A timer
  may re-arm itself (a supplement wait or a clock pause moved a due), so the processor
  asks :meth:`Detectors.timers` again after every ``on_event`` and ``on_timer``; a
  stale timer (no longer armed) is ignored.

A signal fires as soon as its evidence is complete, once per dossier, kind and
anchor (its id is deterministic).

Families, one module each: :mod:`.supplements` (§8.1-8.3), :mod:`.apology` (§8.4),
:mod:`.custody` (§8.5, 8.6, 8.9), :mod:`.conduct` (§8.7, 8.8, 8.10-8.12 and the routed
facts), :mod:`.applicant` (§8.12 across dossiers), :mod:`.officials` (items 10, 13);
parameters no rule set carries are named in :class:`SignalConfig`.

Pure: standard library and the ledger's pure modules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger.domain.catalog import load_catalog
from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook
from streams.signals import apology, applicant, conduct, custody, officials, supplements
from streams.signals.common import Ctx
from streams.signals.config import SignalConfig

__all__ = ["ApplicantDetector", "Detectors", "OfficialAlerts", "SignalConfig"]

Facts = dict[str, Any]
View = Callable[[datetime], dict[str, Any]]
Routed = list[tuple[str, dict[str, Any]]]
Found = tuple[list[dict[str, Any]], Routed]

_SUPPLEMENT = ("SupplementRequested", "SupplementReceived")
_CLOCK = ("ClockPaused", "ClockResumed")
_ENDS = ("ResultIssued", "ResultReturned", "DossierWithdrawn")


class Detectors:
    """Every per-dossier detector of brief §8."""

    def __init__(self, rules: RuleBook, catalog: Any = None, config: SignalConfig | None = None):
        """``catalog``: a :class:`ledger.domain.catalog.Catalog`; None: the packaged one
        (:func:`ledger.domain.catalog.load_catalog`, read on first use); False: none (every
        procedure unknown: the receipt's own documents are the required list)."""
        self.rules = rules
        self._catalog = catalog
        self.config = config or SignalConfig()

    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            self._catalog = load_catalog()
        return None if self._catalog is False else self._catalog

    def on_event(self, st: dict[str, Any], facts: Facts, rec: Recorded, view: View) -> Found:
        env = rec.envelope
        ctx = Ctx(st, facts, env, rec.position, view, self.rules, self.catalog, self.config)
        etype = env["type"]
        if etype == "DossierReceived":
            conduct.on_receipt(ctx)
        conduct.backdated(ctx)
        conduct.off_duty(ctx)
        if etype == "DossierReceived":
            supplements.on_receipt(ctx)
            custody.on_receipt(ctx)
            apology.rearm(ctx, datetime.fromisoformat(env["occurred_at"]))
        elif etype == "HandedOver" or etype == "TransferredToAgency":
            custody.on_handover(ctx)
        elif etype == "StepCompleted":
            custody.on_step(ctx)
        elif etype in _SUPPLEMENT:
            if etype == "SupplementRequested":
                supplements.on_request(ctx)
                conduct.on_supplement_request(ctx)
            else:
                supplements.on_received(ctx)
            custody.on_supplement(ctx)
            apology.rearm(ctx, datetime.fromisoformat(env["occurred_at"]))
        elif etype in _CLOCK:
            at = datetime.fromisoformat(env["occurred_at"])
            custody.rearm_holdings(ctx, at)
            apology.rearm(ctx, at)
        elif etype == "ApologyIssued":
            apology.on_apology(ctx)
        elif etype in _ENDS:
            if etype == "ResultIssued":
                conduct.on_result(ctx)
            elif etype == "ResultReturned":
                conduct.on_returned(ctx)
            else:
                conduct.on_withdrawn(ctx)
            custody.on_result(ctx)
            apology.on_end(ctx)
        elif etype == "FeedbackGiven":
            conduct.on_feedback(ctx)
        return ctx.out, ctx.routed

    def timers(self, st: dict[str, Any], facts: Facts) -> list[tuple[datetime, str]]:
        armed = st.get("t")
        if not armed:
            return []
        return [(datetime.fromisoformat(at), tag) for tag, at in armed.items()]

    def on_timer(
        self, st: dict[str, Any], facts: Facts, tag: str, at: datetime, view: View
    ) -> Found:
        armed = st.get("t")
        if not armed or tag not in armed:
            return [], []  # cancelled or already handled
        ctx = Ctx(st, facts, None, None, view, self.rules, self.catalog, self.config)
        if tag == "fwd":
            custody.forwarding_on_timer(ctx, at)
        else:
            ctx.arm(tag, None)
            if tag == "due":
                apology.on_timer(ctx, at)
            else:
                custody.holding_on_timer(ctx, tag, at)
        return ctx.out, ctx.routed


class ApplicantDetector:
    """Signals that span one applicant's dossiers (``online_to_paper``)."""

    def __init__(self, config: SignalConfig | None = None) -> None:
        self.config = config or SignalConfig()

    def step(self, st: dict[str, Any], fact: dict[str, Any]) -> list[dict[str, Any]]:
        return applicant.step(self.config, st, fact)


class OfficialAlerts:
    """Official-level alerts (refusal bursts, harassment) over every official's facts."""

    def __init__(self, rules: RuleBook, config: SignalConfig | None = None) -> None:
        self.rules = rules
        self.config = config or SignalConfig()

    def step(self, st: dict[str, Any], fact: dict[str, Any]) -> None:
        """Fold one routed official fact into the state."""
        officials.step(st, fact)

    def on_day_final(self, st: dict[str, Any], day: str, replayed: bool) -> list[dict[str, Any]]:
        """Alerts due once the local day ``day`` is final (``alerts`` rows)."""
        return officials.on_day_final(self.rules, self.config, st, day, replayed)
