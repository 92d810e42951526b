"""Per-official workload: open dossiers held, and how many of them are overdue.

A dossier is *held* by the official it was last handed to (the receiver until
the first hand-over); a transfer to another agency with no named official is
held by that agency (official ``None``, left out of the per-official rows). It
is *open* until returned or withdrawn. It is *overdue* when its clock is still
running and ``now`` is past its deadline of record (``classify_open``);
resolved dossiers and those awaiting a supplement under the restart rule run
no clock. ``now`` is always passed in: the last event's business time for the
read model, the instant the user gives on the command line.

Pure: a fold over events (``evolve``) and a function of held dossiers (``rows``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.deadlines import classify_open
from ledger.domain.events import Recorded
from ledger.domain.lifecycle import RESOLVED
from ledger.domain.rules import RuleBook
from ledger.domain.working_calendar import BusinessCalendar
from projections import state as dossier_state

COLUMNS = ("official", "agency", "open_held", "overdue_held", "as_of")


@dataclass(frozen=True, slots=True)
class Held:
    """What the workload needs of one open dossier (a read-model row carries it)."""

    holder: str | None
    holder_agency: str | None
    status: str
    original_due_at: str
    rule_set: str
    agency: str
    awaiting_supplement: bool
    supplement_mode: str


def held(v: dict[str, Any]) -> Held:
    """From a :func:`projections.state.view`."""
    return Held(
        v["holder"],
        v["holder_agency"],
        v["status"],
        v["original_due_at"],
        v["rule_set"],
        v["agency"],
        v["awaiting_supplement"],
        v["supplement_mode"],
    )


def is_overdue(h: Held, rules: RuleBook, now: datetime) -> bool:
    if h.status == RESOLVED or (h.awaiting_supplement and h.supplement_mode == "restart"):
        return False
    rs = rules.get(h.rule_set)
    tz = BusinessCalendar.for_rules(rs, h.agency).tz
    due = datetime.fromisoformat(h.original_due_at)
    return classify_open(now, due, granularity=rs.granularity, tz=tz) == "OVERDUE"


def rows(items: Iterable[Held], rules: RuleBook, now: datetime) -> list[dict[str, Any]]:
    """One row per official holding open dossiers, ordered by official."""
    table: dict[str, list[Any]] = {}
    for h in items:
        if h.holder is None:
            continue
        row = table.setdefault(h.holder, [h.holder_agency, 0, 0])
        row[1] += 1
        if is_overdue(h, rules, now):
            row[2] += 1
    as_of = now.isoformat()
    return [
        {
            "official": official,
            "agency": agency,
            "open_held": n,
            "overdue_held": late,
            "as_of": as_of,
        }
        for official, (agency, n, late) in sorted(table.items())
    ]


# --- as a fold over the whole log ---------------------------------------------

Workload = dict[str, dossier_state.Facts]
"""Dossier id -> fact sheet, for every dossier seen."""


def evolve(state: Workload, recorded: Recorded) -> Workload:
    did = recorded.envelope["dossier_id"]
    return {**state, did: dossier_state.evolve(state.get(did, dossier_state.EMPTY), recorded)}


def of_facts(state: Workload, rules: RuleBook, now: datetime | None = None) -> list[dict[str, Any]]:
    """Rows as of ``now`` (default: the latest business time seen)."""
    if now is None:
        instants = [datetime.fromisoformat(f["last_occurred_at"]) for f in state.values()]
        if not instants:
            return []
        now = max(instants)
    views = (dossier_state.view(f, rules) for f in state.values())
    return rows((held(v) for v in views if v["open"]), rules, now)
