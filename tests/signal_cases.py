"""Hand-made cases for the signal detectors: dossiers written with ``DossierBuilder``, driven
through :class:`streams.signals.drive.Driver` (fold, memoised view, timers, keyed stages)."""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

from ledger.domain.catalog import build_catalog
from ledger.domain.rules import RuleBook, build_rules, load_rules
from streams.signals import SignalConfig
from streams.signals.drive import Driver
from tests.projection_factories import DossierBuilder, recorded, rules_for_tests, t

PACKAGED = load_rules()  # ND118-2025/v1 from 2025-07-01: supplements restart the clock
TEST_RULES = rules_for_tests()  # R-restart (to 2024), R-pause (2025: the 766 pause)


def at(local: str) -> datetime:
    return datetime.fromisoformat(t(local))


def rules_with(**params: Any) -> RuleBook:
    """One rule set ``T`` (from 2018, open-ended) with the packaged defaults and ``params``."""
    return build_rules(
        {
            "rule_sets": [
                {"id": "T", "legal_basis": "test", "effective_from": "2018-01-01", **params}
            ]
        }
    )


def catalog() -> Any:
    """A two-procedure catalog: ``9.000001`` (v1 until 2025-06-30, v2 after) and ``9.000002``."""
    return build_catalog(
        {
            "procedures": [
                {
                    "code": "9.000001",
                    "name": "Cấp phép thử",
                    "level": ["province"],
                    "field": "Thử",
                    "agency": "Sở Thử",
                    "channels": ["direct", "online"],
                    "online_level": "partial",
                    "assumed": [],
                    "documents": ["Đơn", "CCCD", "Bản vẽ"],
                    "retired": ["Giấy cũ"],
                    "versions": [
                        {
                            "version": "1",
                            "allowance": {"value": 5, "unit": "working_days"},
                            "documents": ["D01", "D02", "R01"],
                            "valid_from": "2018-06-21",
                            "valid_to": "2025-06-30",
                        },
                        {
                            "version": "2",
                            "allowance": {"value": 5, "unit": "working_days"},
                            "documents": ["D01", "D02", "D03"],
                            "valid_from": "2025-07-01",
                            "valid_to": None,
                        },
                    ],
                },
                {
                    "code": "9.000002",
                    "name": "Thủ tục khác",
                    "level": ["commune"],
                    "field": "Thử",
                    "agency": "UBND xã",
                    "channels": ["direct"],
                    "online_level": "none",
                    "assumed": [],
                    "documents": ["Đơn"],
                    "versions": [
                        {
                            "version": "1",
                            "allowance": {"value": 3, "unit": "working_days"},
                            "documents": ["D01"],
                            "valid_from": "2018-06-21",
                            "valid_to": None,
                        }
                    ],
                },
            ],
            "extra_documents": ["Giấy xác nhận của tổ dân phố"],
        }
    )


def drive(
    *builders: DossierBuilder,
    rules: RuleBook = PACKAGED,
    cat: Any = False,
    now: str | None = None,
    config: SignalConfig | None = None,
) -> Driver:
    """Run the dossiers' events (merged in business-time order, each dossier in its own order) through the detectors; the
    watermark ends at ``now`` (default: the last event)."""
    envs = list(  # each dossier's own order kept (it may go back in time)
        heapq.merge(
            *(b.envelopes for b in builders),
            key=lambda e: datetime.fromisoformat(e["occurred_at"]),
        )
    )
    return Driver(rules, cat, config).run(recorded(envs), now=at(now) if now else None)


def found(d: Driver, dossier_id: str | None = None, kind: str | None = None) -> list[dict]:
    return [
        s
        for s in d.signals
        if (dossier_id is None or s["dossier_id"] == dossier_id)
        and (kind is None or s["kind"] == kind)
    ]


def kinds(d: Driver, dossier_id: str) -> set[str]:
    return {s["kind"] for s in found(d, dossier_id)}


def event(
    b: DossierBuilder,
    etype: str,
    local: str,
    data: dict[str, Any],
    actor: tuple[str, str, str] | None = None,
    recorded_at: str | None = None,
) -> DossierBuilder:
    """Any event, with an explicit actor and recording time."""
    return b._add(etype, local, data, actor=actor, recorded=recorded_at)


def request(
    b: DossierBuilder,
    local: str,
    documents: list[str],
    *,
    role: str = "receiver",
    who: str = "rc-1",
    stage: str = "appraisal",
) -> DossierBuilder:
    """A supplement request (Form 02), by default through the desk."""
    return event(
        b,
        "SupplementRequested",
        local,
        {"documents": documents, "reason": "thiếu giấy tờ", "stage": stage},
        actor=(who, role, b.agency),
    )


def received(b: DossierBuilder, local: str, documents: list[str]) -> DossierBuilder:
    return event(
        b,
        "SupplementReceived",
        local,
        {"documents": documents},
        actor=("rc-1", "receiver", b.agency),
    )


def dossier(
    dossier_id: str,
    received_at: str,
    *,
    procedure: str = "1.004227",
    version: str = "2025.1",
    documents: list[str] | None = None,
    applicant_id: str | None = None,
    **kw: Any,
) -> DossierBuilder:
    """A ``DossierBuilder`` with the receipt's procedure version, documents and applicant set."""
    b = DossierBuilder(dossier_id, received_at, procedure=procedure, **kw)
    data = b.envelopes[0]["data"]
    data["procedure_version"] = version
    if documents is not None:
        data["documents"] = documents
    if applicant_id is not None:
        data["applicant"] = {"name": "Trần Thị B", "id_number": applicant_id}
    return b
