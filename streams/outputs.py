"""What the stream processors emit: the one row shape of each output, everywhere.

A signal, an alert and a metric row are plain dicts with exactly these keys. The
same dict is a record value on its Kafka topic (``dossier.signals``,
``dossier.alerts``, ``dossier.metrics``), a row of the DuckDB table of the same
name (``signals``, ``alerts``, ``metrics_daily``) and a line of ``dossier alerts
tail``. Instants are ISO 8601 strings with an offset; ``event_ids``,
``recipients`` and ``params`` are JSON values.

Ids are deterministic (a UUID5 of what makes the output unique), so a replay, a
restart or a second worker produces the same id and every loader can be
idempotent by id.

Pure: standard library only.
"""

from __future__ import annotations

import uuid
from typing import Any

NAMESPACE = uuid.UUID("6f1c4f4e-3f0b-4d44-9a55-0e5d2f1f6a10")
"""UUID5 namespace of every output id."""

SIGNAL_COLUMNS: dict[str, str] = {
    "signal_id": "VARCHAR PRIMARY KEY",
    "kind": "VARCHAR NOT NULL",
    "severity": "VARCHAR NOT NULL",  # info | warning | severe | critical
    "dossier_id": "VARCHAR",  # null for official- and agency-level alerts' signals
    "official_id": "VARCHAR",
    "agency": "VARCHAR",
    "procedure_code": "VARCHAR",
    "event_ids": "JSON",  # list of evidence event ids
    "detected_at": "TIMESTAMPTZ NOT NULL",  # business time the evidence became complete
    "params": "JSON",  # the rule id and its parameters, and the measured values
    "position": "BIGINT",  # ledger position of the event that completed the evidence
}

ALERT_COLUMNS: dict[str, str] = {
    "alert_id": "VARCHAR PRIMARY KEY",
    "kind": "VARCHAR NOT NULL",  # deadline | refusal_burst | harassment | low_on_time_rate
    "level": "VARCHAR NOT NULL",  # deadline: half | three_quarters | due; others: warning | severe
    "dossier_id": "VARCHAR",
    "official_id": "VARCHAR",
    "agency": "VARCHAR",
    "procedure_code": "VARCHAR",
    "due_at": "TIMESTAMPTZ",  # the deadline the alert is about (deadline alerts)
    "fired_at": "TIMESTAMPTZ NOT NULL",  # business time the threshold was crossed
    "recipients": "JSON",  # list of "official:ID" | "head:AGENCY" | "inspector:AGENCY"
    "replayed": "BOOLEAN NOT NULL",  # fired long after the fact: not delivered unless asked
    "params": "JSON",
}

METRIC_COLUMNS: dict[str, str] = {
    "day": "DATE NOT NULL",  # local date of the window (the last day for rolling_30d)
    "window": "VARCHAR NOT NULL",  # day | rolling_30d
    "scope": "VARCHAR NOT NULL",  # agency | procedure | official
    "key": "VARCHAR NOT NULL",  # the agency code, procedure code or official id
    "agency": "VARCHAR",  # the agency the key belongs to (procedure: null)
    "received": "BIGINT NOT NULL",
    "resolved_early": "BIGINT NOT NULL",
    "resolved_on_time": "BIGINT NOT NULL",
    "resolved_late": "BIGINT NOT NULL",
    "open_within": "BIGINT NOT NULL",  # open at the end of the day, within deadline
    "open_overdue": "BIGINT NOT NULL",  # open at the end of the day, past the deadline
    "on_time_rate": "DOUBLE",  # (early + on time) / resolved; null with nothing resolved
    "late_events": "BIGINT NOT NULL",  # events that arrived after the window was final
    "final": "BOOLEAN NOT NULL",  # false: provisional (the watermark has not passed end + grace)
}
METRIC_KEY = ("day", "window", "scope", "key")

TABLES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "signals": (SIGNAL_COLUMNS, ("signal_id",)),
    "alerts": (ALERT_COLUMNS, ("alert_id",)),
    "metrics_daily": (METRIC_COLUMNS, METRIC_KEY),
}
"""Output table -> (columns with their SQL types, key); ``analytics.schema`` creates them."""


def output_id(*parts: Any) -> str:
    """A deterministic id from what makes an output unique."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(str(p) for p in parts)))


SEVERITIES = ("info", "warning", "severe", "critical")


def signal(
    kind: str,
    severity: str,
    *,
    anchor: str,
    detected_at: str,
    event_ids: list[str],
    params: dict[str, Any],
    dossier_id: str | None = None,
    official_id: str | None = None,
    agency: str | None = None,
    procedure_code: str | None = None,
    position: int | None = None,
) -> dict[str, Any]:
    """A ``signals`` row. ``anchor`` is what makes it unique within its dossier and kind
    (usually the evidence event that completed it), so a replay gives the same id."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity: one of {', '.join(SEVERITIES)} (got {severity!r})")
    return {
        "signal_id": output_id("signal", kind, dossier_id, official_id, anchor),
        "kind": kind,
        "severity": severity,
        "dossier_id": dossier_id,
        "official_id": official_id,
        "agency": agency,
        "procedure_code": procedure_code,
        "event_ids": event_ids,
        "detected_at": detected_at,
        "params": params,
        "position": position,
    }


def alert(
    kind: str,
    level: str,
    *,
    anchor: str,
    fired_at: str,
    recipients: list[str],
    replayed: bool,
    params: dict[str, Any],
    dossier_id: str | None = None,
    official_id: str | None = None,
    agency: str | None = None,
    procedure_code: str | None = None,
    due_at: str | None = None,
) -> dict[str, Any]:
    """An ``alerts`` row; ``anchor`` makes it unique (e.g. the deadline it is about)."""
    return {
        "alert_id": output_id("alert", kind, level, dossier_id, official_id, agency, anchor),
        "kind": kind,
        "level": level,
        "dossier_id": dossier_id,
        "official_id": official_id,
        "agency": agency,
        "procedure_code": procedure_code,
        "due_at": due_at,
        "fired_at": fired_at,
        "recipients": recipients,
        "replayed": replayed,
        "params": params,
    }
