"""Parameters of the misconduct detectors that no rule set carries (named, configurable).

Every numeric rule of the law (supplement window, 15:00 cutoff and grace, apology
lead, reschedule limit, back-dating tolerances, separation of duties, idle
thresholds, duty schedules, supplement limit) comes from the rule set pinned at
the dossier's receipt; what the brief leaves open (the N of online -> paper, the
m of ping-pong, the peers and thresholds of the official-level alerts) is named
here.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SignalConfig:
    """Parameters of the detectors that no rule set carries (named, configurable)."""

    # --- per dossier ---------------------------------------------------------------
    ping_pong_round_trips: int = 2
    """§8.6: A -> B -> A this many times is ping-pong."""
    ping_pong_extra_handovers: int = 3
    """§8.6 "more handovers than the route + m": the m."""
    default_route_handovers: int = 3
    """Hand-overs of the route when the catalog does not know the procedure
    (desk -> appraiser -> approver -> desk)."""
    online_to_paper_days: int = 30
    """§8.12: a direct filing this many (calendar) days after an online setback."""
    desk_roles: tuple[str, ...] = ("receiver", "desk_head")
    """§8.2: roles through which a supplement request lawfully goes (Form 02 via the desk)."""
    approval_steps: tuple[str, ...] = ("approval",)
    appraisal_steps: tuple[str, ...] = ("appraisal",)
    """Step names (hand-overs, completed steps) that mark an approver / an appraiser (§8.9)."""
    delegated: frozenset[str] = frozenset()
    """§8.9, 17(5): procedure codes or agencies whose desk staff may lawfully decide."""
    supplement_window_overrides: Mapping[str, str] = field(default_factory=dict)
    """§8.3 "sector override": procedure code or agency -> window (e.g. ``"5wd"``)."""
    month_days: int = 30
    """A step budget in months counts this many elapsed days per month."""

    # --- official level (brief items 10 and 13) ---------------------------------------
    burst_window_working_days: int = 20
    burst_z: float = 3.0
    burst_min_volume: int = 10
    """Ends (results, withdrawals) an official must have in the window to be judged."""
    burst_min_peers: int = 5
    burst_min_std: float = 0.02
    """Floor of the peers' standard deviation (a rate is a share: 2 points)."""
    late_end_share: float = 0.8
    """A withdrawal after this share of the allowance is used "hides lateness" (§8.10)."""
    harassment_window_days: int = 90
    harassment_k: float = 3.0
    harassment_min_feedback: int = 5
    harassment_min_peers: int = 5
    harassment_mad_floor: float = 0.05
    low_rating_max: int = 2
    """A rating at or below this is a dislike (§8.13)."""
