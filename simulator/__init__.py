"""Simulate a province's dossiers as JSON Lines envelopes, with ground-truth labels.

The room: ``engine`` (the day loop), ``province`` (agencies, desks, officials),
``people``, ``behaviour`` (paces and misconduct traits), ``scenario`` (one dossier's
script and its labels), ``apology``, ``timing``, ``texts``; ``factories`` (small
hand-made envelopes for tests). It imports only ``ledger.domain``.

``simulate(days, seed, out, labels, start=date)`` writes one envelope a line to
``out`` (in occurrence order, accepted by the ledger as is) and, if ``labels``
is given, one ``{"dossier_id", "kind", "event_id"}`` a line for every injected
or naturally arising irregularity. Same seed, same bytes.

What each label kind means here, and the event it points at:

* ``off_duty_receipt``, ``superseded_procedure`` (version not valid on the local
  receipt date, per ``ledger.domain.catalog``), ``online_to_paper`` (a direct filing of the
  same applicant and procedure within ``Params.online_to_paper_window_days`` after an
  online supplement request or refusal): the ``DossierReceived``.
* ``late_forwarding``: the first ``HandedOver`` (desk -> appraiser), later than
  ``forwarding_deadline`` + ``forwarding_grace`` of the rule set.
* ``idle_beyond_allotment``: the budgeted ``HandedOver`` opening a holding whose time
  (until the holder's ``StepCompleted`` of that step or next handover out, or until a
  withdrawal or a supplement request that is never answered, minus supplement waits;
  office time for working units, elapsed time for calendar units, a month = 30 days)
  exceeds the budget.
* ``repeated_supplement``: the second ``SupplementRequested``;
  ``unlisted_document_requested``: a request naming a document not on the version's
  list (sometimes also made by the appraiser instead of the desk);
  ``late_supplement_request``: a request more than ``supplement_request_window``
  working days after the receipt date.
* ``late_without_apology``: the ``ResultIssued`` of a dossier finished after its due
  of record (by local date; in restart mode counted from the last
  ``SupplementReceived``) with no apology on or before the working day before that
  due; also (restart mode) a ``SupplementRequested`` made when the due of record then
  (the receipt's, or the one restarted by the previous ``SupplementReceived``) had
  already passed with the clock running (the brief's "the end (or now) is past
  original_due_at", before the request restarted it); ``repeated_apology``: the second
  ``ApologyIssued``.
* ``ping_pong``: the ``HandedOver`` completing the second A->B->A round trip.
* ``backdated_event``: the event recorded 1.5-4 working days after its
  ``occurred_at`` (ordinary delays: under 2 minutes online, under 2 hours on paper).
* ``same_official_receive_approve``, ``refusal_without_reason``: the ``ResultIssued``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import IO, Any

from ledger.domain.signal_kinds import KINDS
from simulator.behaviour import DEFAULT_ACT_RATES, TRAITS, Params
from simulator.engine import DEFAULT_START, Simulation

__all__ = ["DEFAULT_ACT_RATES", "DEFAULT_START", "Params", "simulate"]

# the labels cover exactly the signal kinds of the brief (ledger.domain.signal_kinds)
assert {kind for _, kind in TRAITS.values()} == set(KINDS)


def simulate(
    days: int,
    seed: int,
    out: IO[str],
    labels: IO[str] | None = None,
    *,
    start: date = DEFAULT_START,
    params: Params | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run ``days`` days of a province from ``start``; return a JSON-able summary.

    Events (and labels) are written as the days go, so memory holds only the
    dossiers in flight: a province-year (``Params(dossiers_per_day=10_000)``,
    about 2.5 million dossiers) streams to ``out``. ``progress`` is called once a day.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    sim = Simulation(days, seed, start, params or Params())
    return sim.run(out, labels, progress)
