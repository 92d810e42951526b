"""Hand-made and random dossier event sequences for the projection tests (and bench/replay.py).

``DossierBuilder`` writes one dossier's envelopes step by step with readable
local times (``"2025-09-01 08:00"`` is Hanoi time); ``recorded`` turns
envelopes into stored events with positions, as the runners see them;
``province`` makes many random but lawful dossiers, interleaved in time.
"""

from __future__ import annotations

import random
import uuid
import zlib
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.events import Recorded
from ledger.domain.rules import RuleBook, build_rules

TZ = "+07:00"
RULE_SET = "ND118-2025/v1"
NS = uuid.UUID("6f1c1c2e-7d55-4a51-9b1a-2a4a3b2c1d00")


def t(local: str) -> str:
    """``"2025-09-01 08:00"`` (Hanoi) as an ISO instant with its offset."""
    return datetime.fromisoformat(local.replace(" ", "T")).isoformat() + TZ


class DossierBuilder:
    """One dossier's envelopes, in the order they are added."""

    def __init__(
        self,
        dossier_id: str,
        received_at: str,
        *,
        agency: str = "SO-TNMT",
        receiver: str = "rc-1",
        allowance: tuple[float, str] = (3, "working_days"),
        appointment_at: str | None = None,
        channel: str = "direct",
        rule_set: str | None = RULE_SET,
        procedure: str = "1.004227",
    ) -> None:
        self.dossier_id = dossier_id
        self.agency = agency
        self.holder = (receiver, agency)
        self.envelopes: list[dict[str, Any]] = []
        data: dict[str, Any] = {
            "procedure_code": procedure,
            "procedure_version": "2025.1",
            "agency": agency,
            "channel": channel,
            "applicant": {
                "name": "Nguyen Van A",
                "id_number": f"0790{zlib.crc32(dossier_id.encode()):010d}",
            },
            "documents": ["DON", "CCCD"],
            "processing_time": {"value": allowance[0], "unit": allowance[1]},
        }
        if appointment_at:
            data["appointment_at"] = t(appointment_at)
        if rule_set:
            data["rule_set"] = rule_set
        self._add("DossierReceived", received_at, data, actor=(receiver, "receiver", agency))

    def _add(
        self,
        etype: str,
        local: str,
        data: dict[str, Any],
        actor: tuple[str, str, str] | None = None,
        recorded: str | None = None,
    ) -> DossierBuilder:
        who = actor or (self.holder[0] or "system", "handler", self.holder[1])
        env = {
            "event_id": str(uuid.uuid5(NS, f"{self.dossier_id}/{len(self.envelopes)}")),
            "dossier_id": self.dossier_id,
            "type": etype,
            "occurred_at": t(local),
            "recorded_at": t(recorded or local),
            "actor": {"id": who[0], "role": who[1], "agency": who[2]},
            "data": data,
            "schema_version": 2,
        }
        self.envelopes.append(env)
        return self

    def handover(
        self,
        at: str,
        to: str,
        step: str,
        *,
        to_agency: str | None = None,
        budget: tuple[float, str] | None = None,
        acknowledged: bool | None = True,
        note: str | None = None,
    ) -> DossierBuilder:
        frm, frm_agency = self.holder
        data: dict[str, Any] = {
            "from_official": frm,
            "from_agency": frm_agency,
            "to_official": to,
            "to_agency": to_agency or self.agency,
            "step": step,
        }
        if budget:
            data["budget"] = {"value": budget[0], "unit": budget[1]}
        if acknowledged is not None:
            data["acknowledged"] = acknowledged
        if note:
            data["note"] = note
        self._add("HandedOver", at, data, actor=(frm, "handler", frm_agency))
        self.holder = (to, data["to_agency"])
        return self

    def transfer(
        self, at: str, to_agency: str, task: str, *, budget: tuple[float, str] | None = None
    ) -> DossierBuilder:
        data: dict[str, Any] = {"to_agency": to_agency, "task": task}
        if budget:
            data["budget"] = {"value": budget[0], "unit": budget[1]}
        self._add("TransferredToAgency", at, data)
        self.holder = (None, to_agency)  # type: ignore[assignment]
        return self

    def completed(self, at: str, step: str, outcome: str | None = None) -> DossierBuilder:
        data = {"step": step} | ({"outcome": outcome} if outcome else {})
        return self._add("StepCompleted", at, data)

    def supplement_requested(self, at: str, stage: str = "appraisal") -> DossierBuilder:
        return self._add(
            "SupplementRequested",
            at,
            {"documents": ["BAN-VE"], "reason": "missing drawing", "stage": stage},
        )

    def supplement_received(self, at: str) -> DossierBuilder:
        return self._add(
            "SupplementReceived",
            at,
            {"documents": ["BAN-VE"]},
            actor=("ap-1", "applicant", self.agency),
        )

    def pause(self, at: str, reason: str = "site inspection") -> DossierBuilder:
        return self._add("ClockPaused", at, {"reason": reason})

    def resume(self, at: str, reason: str = "inspection done") -> DossierBuilder:
        return self._add("ClockResumed", at, {"reason": reason})

    def apology(
        self, at: str, new_appointment: str | None, reason: str = "backlog"
    ) -> DossierBuilder:
        data = {"reason": reason} | (
            {"new_appointment_at": t(new_appointment)} if new_appointment else {}
        )
        return self._add("ApologyIssued", at, data)

    def result(self, at: str, decision: str = "approved") -> DossierBuilder:
        return self._add("ResultIssued", at, {"decision": decision, "reason": "ok"})

    def returned(self, at: str, channel: str = "direct") -> DossierBuilder:
        return self._add(
            "ResultReturned", at, {"channel": channel}, actor=("rc-1", "receiver", self.agency)
        )

    def withdrawn(self, at: str) -> DossierBuilder:
        return self._add(
            "DossierWithdrawn",
            at,
            {"reason": "changed mind"},
            actor=("ap-1", "applicant", self.agency),
        )

    def feedback(self, at: str, rating: int = 5) -> DossierBuilder:
        return self._add(
            "FeedbackGiven", at, {"rating": rating}, actor=("ap-1", "applicant", self.agency)
        )


def recorded(envelopes: list[dict[str, Any]], start: int = 1) -> list[Recorded]:
    """Envelopes as stored events, positions from ``start``, versions per dossier."""
    versions: dict[str, int] = {}
    out = []
    for i, env in enumerate(envelopes):
        did = env["dossier_id"]
        versions[did] = versions.get(did, 0) + 1
        stored = {**env, "appended_at": env.get("recorded_at") or env["occurred_at"]}
        out.append(Recorded(start + i, versions[did], stored))
    return out


# --- a random province ----------------------------------------------------------

AGENCIES = ("SO-TNMT", "SO-XD", "UBND-H1", "UBND-H2")
OFFICIALS = {a: [f"{a.lower()}-h{i}" for i in range(1, 5)] for a in AGENCIES}


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M")


def random_dossier(
    rng: random.Random, dossier_id: str, received: datetime, rule_set: str | None = RULE_SET
) -> DossierBuilder:
    """A lawful life of one dossier: hand-overs, maybe a supplement, a pause, an apology."""
    agency = rng.choice(AGENCIES)
    unit = rng.choice(["working_days"] * 4 + ["working_hours", "calendar_days"])
    value = rng.choice([1, 2, 3, 5, 10]) if unit != "working_hours" else rng.choice([4, 8, 16])
    appointment = None
    if rng.random() < 0.3:
        appointment = _fmt(received + timedelta(days=value + 2))
    b = DossierBuilder(
        dossier_id,
        _fmt(received),
        agency=agency,
        receiver=f"{agency.lower()}-rc",
        allowance=(value, unit),
        appointment_at=appointment,
        channel=rng.choice(["direct", "online", "postal"]),
        rule_set=rule_set,
    )
    now = received
    officials = OFFICIALS[agency]

    def later(hours: float) -> str:
        nonlocal now
        now = now + timedelta(hours=rng.uniform(0.2, hours))
        return _fmt(now)

    for step in ("appraisal", "approval")[: rng.randint(1, 2)]:
        b.handover(
            later(30),
            rng.choice(officials),
            step,
            budget=(rng.choice([1, 2]), "working_days") if rng.random() < 0.7 else None,
            acknowledged=rng.random() < 0.9,
        )
        if rng.random() < 0.3:
            b.supplement_requested(later(10))
            if rng.random() < 0.8:
                b.supplement_received(later(60))
            else:
                return b  # still waiting
        if rng.random() < 0.15:
            b.pause(later(8))
            b.resume(later(30))
        if rng.random() < 0.5:
            b.completed(later(20), step)
    if rng.random() < 0.1:
        b.apology(later(10), _fmt(now + timedelta(days=5)))
    r = rng.random()
    if r < 0.05:
        b.withdrawn(later(20))
    elif r < 0.85:
        b.result(later(40), rng.choice(["approved"] * 9 + ["refused"]))
        if rng.random() < 0.8:
            b.returned(later(30))
            if rng.random() < 0.2:
                b.feedback(later(10))
    return b


def province(
    dossiers: int,
    seed: int = 1,
    start: str = "2025-09-01 08:00",
    rule_set: str | None = RULE_SET,
) -> list[dict[str, Any]]:
    """Envelopes of many random dossiers, each dossier in order, interleaved by time."""
    rng = random.Random(seed)
    t0 = datetime.fromisoformat(start)
    lives = []
    for i in range(dossiers):
        received = t0 + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
        life = random_dossier(rng, f"D{seed:02d}-{i:06d}", received, rule_set)
        lives.append(life.envelopes)
    # interleave: merge by occurred_at, keeping each dossier's own order
    heads = [(datetime.fromisoformat(life[0]["occurred_at"]), n, 0) for n, life in enumerate(lives)]
    import heapq

    heapq.heapify(heads)
    out = []
    while heads:
        _, n, k = heapq.heappop(heads)
        out.append(lives[n][k])
        if k + 1 < len(lives[n]):
            nxt = datetime.fromisoformat(lives[n][k + 1]["occurred_at"])
            heapq.heappush(heads, (nxt, n, k + 1))
    return out


def rules_for_tests() -> RuleBook:
    """Two in-memory rule sets with the packaged calendar choices: ``R-restart``
    (supplements restart the clock) and ``R-pause`` (766: waits are subtracted)."""
    base = {"legal_basis": "test", "granularity": "date", "max_supplement_requests": 1}
    return build_rules(
        {
            "rule_sets": [
                {
                    **base,
                    "id": "R-restart",
                    "effective_from": "2018-01-01",
                    "effective_to": "2024-12-31",
                    "supplement_mode": "restart",
                },
                {
                    **base,
                    "id": "R-pause",
                    "effective_from": "2025-01-01",
                    "effective_to": None,
                    "supplement_mode": "pause",
                },
            ]
        },
        {
            "days_off": [{"date": "2025-05-02", "name": "swapped with Sat 26 Apr"}],
            "workdays": [{"date": "2025-04-26", "name": "make-up Saturday"}],
        },
    )
