"""Valid test envelopes without the simulator: a dossier's life as the ledger accepts it.

``dossier_life`` gives one dossier's events (DossierReceived, hand-overs and
steps, maybe a supplement round or a pause, a result and its return), and
``event_stream`` interleaves many dossiers the way a province's offices do,
keeping each dossier's own order. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

VN = timezone(timedelta(hours=7))
START = datetime(2025, 9, 1, 8, 0, tzinfo=VN)
AGENCIES = ("ubnd-xa-an-binh", "ubnd-xa-tan-phu", "so-tu-phap")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def envelope(
    rng: random.Random,
    dossier_id: str,
    etype: str,
    at: datetime,
    data: dict[str, Any],
    *,
    role: str = "handler",
    actor: str = "cb-001",
    agency: str = AGENCIES[0],
) -> dict[str, Any]:
    return {
        "event_id": _uuid(rng),
        "dossier_id": dossier_id,
        "type": etype,
        "occurred_at": at.isoformat(),
        "recorded_at": (at + timedelta(seconds=30)).isoformat(),
        "actor": {"id": actor, "role": role, "agency": agency},
        "data": data,
        "schema_version": 2,
    }


def dossier_life(
    dossier_id: str, rng: random.Random, start: datetime = START, steps: int | None = None
) -> list[dict[str, Any]]:
    """One dossier's events, in order, each a little after the previous one."""
    agency = rng.choice(AGENCIES)
    at = start + timedelta(minutes=rng.randrange(0, 480))
    n = rng.randrange(1, 4) if steps is None else steps
    out = [
        envelope(
            rng,
            dossier_id,
            "DossierReceived",
            at,
            {
                "procedure_code": "1.001234",
                "procedure_version": "2024-01",
                "agency": agency,
                "channel": rng.choice(("direct", "online", "postal")),
                "applicant": {
                    "name": f"Nguyễn Văn {dossier_id[-4:]}",
                    "id_number": f"0{rng.randrange(10**10, 10**11)}",
                },
                "documents": ["don-de-nghi", "cccd"],
                "processing_time": {"value": rng.choice((3, 5, 10)), "unit": "working_days"},
            },
            role="receiver",
            actor="tn-01",
            agency=agency,
        )
    ]
    officials = ["tn-01", "cv-02", "ld-03", "cv-04"]
    for i in range(n):
        at += timedelta(hours=rng.randrange(1, 30))
        src, dst = officials[i % 4], officials[(i + 1) % 4]
        out.append(
            envelope(
                rng,
                dossier_id,
                "HandedOver",
                at,
                {
                    "from_official": src,
                    "from_agency": agency,
                    "to_official": dst,
                    "to_agency": agency,
                    "step": f"step-{i + 1}",
                },
                actor=src,
                agency=agency,
            )
        )
        at += timedelta(hours=rng.randrange(1, 20))
        out.append(
            envelope(
                rng,
                dossier_id,
                "StepCompleted",
                at,
                {"step": f"step-{i + 1}"},
                actor=dst,
                agency=agency,
            )
        )
    if rng.random() < 0.3:
        at += timedelta(hours=2)
        out.append(envelope(rng, dossier_id, "ClockPaused", at, {"reason": "site visit"}))
        at += timedelta(hours=20)
        out.append(envelope(rng, dossier_id, "ClockResumed", at, {"reason": "visit done"}))
    at += timedelta(hours=rng.randrange(1, 10))
    out.append(
        envelope(
            rng,
            dossier_id,
            "ResultIssued",
            at,
            {"decision": "approved"},
            role="approver",
            agency=agency,
        )
    )
    at += timedelta(hours=rng.randrange(1, 10))
    out.append(
        envelope(
            rng,
            dossier_id,
            "ResultReturned",
            at,
            {"channel": "direct"},
            role="receiver",
            agency=agency,
        )
    )
    return out


def event_stream(dossiers: int, seed: int = 1, prefix: str = "D") -> list[dict[str, Any]]:
    """Events of ``dossiers`` dossiers, interleaved at random, each dossier in order."""
    rng = random.Random(seed)
    lives = [dossier_life(f"{prefix}-{seed}-{i:06d}", rng) for i in range(dossiers)]
    cursors = [0] * len(lives)
    live = list(range(len(lives)))
    out: list[dict[str, Any]] = []
    while live:
        k = rng.randrange(len(live))
        i = live[k]
        out.append(lives[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(lives[i]):
            live[k] = live[-1]
            live.pop()
    return out


def write_jsonl(path: Path, envelopes: Iterable[dict[str, Any]]) -> Path:
    with path.open("wb") as f:
        for env in envelopes:
            f.write(orjson.dumps(env) + b"\n")
    return path
