"""Signals that span one applicant's dossiers (brief §8.12): ``online_to_paper``.

The dossier detectors route two kinds of fact under ``applicant:<pseudonym>``: an
online *setback* (a supplement request, or a refusal, on an online dossier) and
a *filing* in person (channel 1, ``direct``). A filing of the same procedure
within ``SignalConfig.online_to_paper_days`` after a setback is the applicant
pushed from the online service back to paper.

Pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from streams.outputs import signal
from streams.signals.config import SignalConfig


def step(config: SignalConfig, st: dict[str, Any], fact: dict[str, Any]) -> list[dict[str, Any]]:
    window = timedelta(days=config.online_to_paper_days)
    at = datetime.fromisoformat(fact["at"])
    setbacks = st.get("sb", [])
    if setbacks:  # drop what no later filing can match (facts come in business order)
        setbacks = [s for s in setbacks if at - datetime.fromisoformat(s[1]) <= window]
    out: list[dict[str, Any]] = []
    if fact["t"] == "setback":
        setbacks.append([fact["procedure"], fact["at"], fact["dossier_id"], fact["event_id"]])
    elif fact["t"] == "filed":
        for procedure, when, dossier, event_id in setbacks:
            before = datetime.fromisoformat(when)
            if procedure != fact["procedure"] or dossier == fact["dossier_id"]:
                continue
            if before <= at and at - before <= window:
                out.append(
                    signal(
                        "online_to_paper",
                        "warning",
                        anchor=fact["event_id"],
                        detected_at=fact["at"],
                        event_ids=[event_id, fact["event_id"]],
                        params={
                            "rule": "brief-8.12",
                            "why": "filed in person after an online setback",
                            "online_dossier": dossier,
                            "setback_at": when,
                            "window_days": config.online_to_paper_days,
                        },
                        dossier_id=fact["dossier_id"],
                        official_id=fact.get("official_id"),
                        agency=fact.get("agency"),
                        procedure_code=fact["procedure"],
                        position=fact.get("position"),
                    )
                )
                break
    if setbacks:
        st["sb"] = setbacks
    else:
        st.pop("sb", None)
    return out
