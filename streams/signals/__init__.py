"""Misconduct signals (domain brief §8) as pure detectors driven by the stream.

The dossier processor (:mod:`streams.dossier`) calls :class:`Detectors` for every
event of a dossier and for every timer the detectors asked for; the keyed stage
(:mod:`streams.aggregates`) calls :class:`ApplicantDetector` (signals that span an
applicant's dossiers) and :class:`OfficialAlerts` (official-level alerts).

Contract (the processor relies on exactly this):

* ``Detectors.on_event(st, facts, rec, view)`` -> ``(signals, routed)``: ``st`` is this
  dossier's detector scratch (a JSON dict the detectors own and mutate; persisted
  between calls), ``facts`` the projection fact sheet *after* ``rec`` was folded,
  ``rec`` the :class:`~ledger.events.Recorded`, ``view(now)`` the memoised
  ``projections.state.view(facts, rules, now)``. ``signals`` are
  ``streams.outputs.signal`` rows; ``routed`` is a list of ``(key, fact)`` pairs for
  the keyed stage (``"applicant:<pseudonym>"``, ``"officials"``).
* ``Detectors.timers(st, facts)`` -> ``[(instant, tag), ...]``: instants at which the
  detectors want :meth:`on_timer` called if no event of the dossier comes first
  (e.g. a step budget running out). The processor calls ``on_timer`` once the
  watermark passes the instant, or just before the dossier's next event that
  occurs after it, so the outcome never depends on when the runner got there.
* ``Detectors.on_timer(st, facts, tag, at, view)`` -> ``(signals, routed)``.

A signal fires as soon as its evidence is complete, once per dossier, kind and
anchor (its id is deterministic).

Pure: standard library and the ledger's pure modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.events import Recorded
from ledger.rules import RuleBook
from streams.outputs import signal

Facts = dict[str, Any]
View = Callable[[datetime], dict[str, Any]]
Routed = list[tuple[str, dict[str, Any]]]
Found = tuple[list[dict[str, Any]], Routed]


@dataclass(frozen=True)
class SignalConfig:
    """Parameters of the detectors that no rule set carries (named, configurable)."""

    ping_pong_round_trips: int = 2


class Detectors:
    """Every per-dossier detector of brief §8."""

    def __init__(self, rules: RuleBook, catalog: Any = None, config: SignalConfig | None = None):
        self.rules = rules
        self.catalog = catalog
        self.config = config or SignalConfig()

    def on_event(self, st: dict[str, Any], facts: Facts, rec: Recorded, view: View) -> Found:
        env = rec.envelope
        out: list[dict[str, Any]] = []
        if env["type"] == "SupplementRequested":
            ids = st.setdefault("requests", [])
            ids.append(env["event_id"])
            if len(ids) == 2:
                out.append(
                    signal(
                        "repeated_supplement",
                        "warning",
                        anchor=env["event_id"],
                        detected_at=env["occurred_at"],
                        event_ids=list(ids),
                        params={"rule": "brief-8.1", "requests": len(ids)},
                        dossier_id=env["dossier_id"],
                        official_id=env["actor"]["id"],
                        agency=facts["agency"],
                        procedure_code=facts["procedure_code"],
                        position=rec.position,
                    )
                )
        elif env["type"] == "ResultIssued" and env["data"]["decision"] == "refused":
            if not (env["data"].get("reason") or "").strip():
                out.append(
                    signal(
                        "refusal_without_reason",
                        "severe",
                        anchor=env["event_id"],
                        detected_at=env["occurred_at"],
                        event_ids=[env["event_id"]],
                        params={"rule": "brief-8.10"},
                        dossier_id=env["dossier_id"],
                        official_id=env["actor"]["id"],
                        agency=facts["agency"],
                        procedure_code=facts["procedure_code"],
                        position=rec.position,
                    )
                )
        return out, []

    def timers(self, st: dict[str, Any], facts: Facts) -> list[tuple[datetime, str]]:
        return []

    def on_timer(
        self, st: dict[str, Any], facts: Facts, tag: str, at: datetime, view: View
    ) -> Found:
        return [], []


class ApplicantDetector:
    """Signals that span one applicant's dossiers (``online_to_paper``)."""

    def __init__(self, config: SignalConfig | None = None) -> None:
        self.config = config or SignalConfig()

    def step(self, st: dict[str, Any], fact: dict[str, Any]) -> list[dict[str, Any]]:
        return []


class OfficialAlerts:
    """Official-level alerts (refusal bursts, harassment) over every official's facts."""

    def __init__(self, rules: RuleBook, config: SignalConfig | None = None) -> None:
        self.rules = rules
        self.config = config or SignalConfig()

    def step(self, st: dict[str, Any], fact: dict[str, Any]) -> None:
        """Fold one routed official fact into the state."""

    def on_day_final(self, st: dict[str, Any], day: str, replayed: bool) -> list[dict[str, Any]]:
        """Alerts due once the local day ``day`` is final (``alerts`` rows)."""
        return []
