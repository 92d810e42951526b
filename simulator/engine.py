"""The day loop: how many dossiers arrive, where, through which channel, by whom.

Deterministic: one ``random.Random(seed)`` drives everything in a fixed order
(days in order, each day's receipts sorted by instant), event ids come from it,
and the output is sorted by (occurred_at, dossier ordinal, event sequence).
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

from ledger.domain.catalog import Catalog, ProcedureVersion, load_catalog
from ledger.domain.rules import RuleBook, load_rules
from ledger.domain.working_calendar import BusinessCalendar
from simulator.behaviour import Params
from simulator.people import applicant as new_applicant
from simulator.province import (
    COMMUNE_NAMES,
    DISTRICTS,
    PROVINCE_NAME,
    Office,
    Official,
    Province,
)
from simulator.scenario import Intake, Script, World
from simulator.timing import Timing

DEFAULT_START = date(2025, 9, 1)
WEEKDAY_FACTORS = (1.25, 1.05, 1.0, 0.95, 0.85, 0.3, 0.2)
# First day of the lunar new year (Tết Nguyên Đán).
TET = {
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}
REPEAT_POOL = 5000


def tet_factor(d: date) -> float:
    """A dip in the two weeks before Tết, a surge in the three weeks after the holiday."""
    for anchor in (TET.get(d.year), TET.get(d.year + 1)):
        if anchor is None:
            continue
        delta = (d - anchor).days
        if -14 <= delta < 0:
            return 0.6
        if 5 <= delta <= 25:
            return 1.5 - 0.025 * (delta - 5)
    return 1.0


@dataclass
class Seed:
    """A receipt about to happen."""

    at: datetime
    order: int
    office: Office
    receiver: Official
    version: ProcedureVersion
    channel: str
    applicant: dict[str, str]
    superseded: bool = False
    off_duty: bool = False


@dataclass
class Simulation:
    days: int
    seed: int
    start: date
    params: Params
    rules: RuleBook = field(default_factory=load_rules)
    catalog: Catalog = field(default_factory=load_catalog)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.province = Province(self.rng, self.params, self.catalog)
        self.end = self.start + timedelta(days=self.days)
        self.applicants: list[dict[str, str]] = []
        self.seq: Counter[tuple[str, date]] = Counter()
        self.setbacks: dict[tuple[str, str], list[datetime]] = {}
        self.follow_ups: dict[date, list[tuple[Office, str, dict[str, str]]]] = {}
        self.status: Counter[str] = Counter()
        self.finished = 0
        self.late = 0
        self.channels: Counter[str] = Counter()
        self.pending: list[tuple[datetime, int, int, str, str]] = []
        self.labelled: dict[str, list[tuple[str, str]]] = {}
        self.label_kinds: Counter[str] = Counter()
        self.label_out: IO[str] | None = None
        self.written = 0
        self.first_event: datetime | None = None
        self.last_event: datetime | None = None
        self._timings: dict[int, Timing] = {}
        self._order = 0

    # --- helpers -----------------------------------------------------------------

    def world(self, at: datetime, agency: str) -> World:
        rs = self.rules.in_force(at)
        cal = BusinessCalendar.for_rules(rs, agency)
        timing = self._timings.get(id(cal))
        if timing is None:
            timing = self._timings[id(cal)] = Timing(cal)
        return World(self.rng, self.params, self.catalog, rs, cal, timing)

    def calendar(self, d: date) -> BusinessCalendar:
        return BusinessCalendar.for_rules(self.rules.in_force(d), None)

    def applicant_for(self, office: Office) -> dict[str, str]:
        rng = self.rng
        if self.applicants and rng.random() < self.params.repeat_applicant_rate:
            return rng.choice(self.applicants)
        if office.agency.level == "commune":
            commune = office.agency.name.rsplit("xã ", 1)[-1]
            district = DISTRICTS[int(office.agency.code.split(".")[2]) - 21]
        else:
            k = rng.randrange(len(COMMUNE_NAMES))
            commune, district = COMMUNE_NAMES[k], DISTRICTS[k // 8]
        person = new_applicant(rng, commune, district, PROVINCE_NAME)
        if len(self.applicants) < REPEAT_POOL:
            self.applicants.append(person)
        else:
            self.applicants[rng.randrange(REPEAT_POOL)] = person
        return person

    def channel_for(self, v: ProcedureVersion) -> str:
        rng, p = self.rng, self.params
        if "online" in v.channels and (len(v.channels) == 1 or rng.random() < p.online_share):
            return "online"
        if "postal" in v.channels and (rng.random() < p.postal_share or "direct" not in v.channels):
            return "postal"
        return "direct" if "direct" in v.channels else v.channels[0]

    def pick(self, level: str, d: date) -> tuple[Office, ProcedureVersion] | None:
        menu = self.province.menus[level]
        for _ in range(5):
            code = menu.draw(self.rng)
            v = self.catalog.in_force(code, d)
            if v is not None:
                return self.rng.choice(menu.office_of[code]), v
        return None

    def stale(self, receiver: Official, v: ProcedureVersion, d: date) -> ProcedureVersion | None:
        """The expired version a receiver with stale forms uses instead, if any."""
        if receiver.trait != "stale_forms":
            return None
        old = [
            o for o in self.catalog.versions(v.code) if o.valid_to is not None and o.valid_to < d
        ]
        if not old or self.rng.random() >= self.params.act_rate("stale_forms"):
            return None
        return old[-1]

    def seed_for(self, office: Office, v: ProcedureVersion, at: datetime, **kw: Any) -> Seed:
        receiver = kw.pop("receiver", None) or self.rng.choice(office.receivers)
        channel = kw.pop("channel", None) or self.channel_for(v)
        applicant = kw.pop("applicant", None) or self.applicant_for(office)
        superseded = False
        old = self.stale(receiver, v, at.date())
        if old is not None:
            v, superseded = old, True
        self._order += 1
        return Seed(at, self._order, office, receiver, v, channel, applicant, superseded, **kw)

    # --- one day ---------------------------------------------------------------------

    def working_day(self, d: date, cal: BusinessCalendar) -> list[Seed]:
        rng, p = self.rng, self.params
        mean = p.dossiers_per_day * WEEKDAY_FACTORS[d.weekday()] * tet_factor(d)
        n = max(0, round(mean * rng.uniform(0.9, 1.1)))
        levels = list(p.level_shares)
        weights = [p.level_shares[k] for k in levels]
        day_minutes = cal.working_day_length / timedelta(minutes=1)
        timing = Timing(cal)
        seeds = []
        for _ in range(n):
            picked = self.pick(rng.choices(levels, weights)[0], d)
            if picked is None:
                continue
            office, v = picked
            minute = rng.uniform(3, day_minutes - 20)
            if rng.random() < 0.35:  # mornings are busier
                minute = min(minute, rng.uniform(3, day_minutes / 2))
            seeds.append(self.seed_for(office, v, timing.at_day(d, minute)))
        for office, code, person in self.follow_ups.pop(d, []):
            v = self.catalog.in_force(code, d)
            if v is None or "direct" not in v.channels:
                continue
            at = timing.at_day(d, rng.uniform(3, day_minutes - 20))
            seeds.append(self.seed_for(office, v, at, channel="direct", applicant=person))
        return seeds

    def day_off(self, d: date, cal: BusinessCalendar) -> list[Seed]:
        """Receipts on a non-working day: only officials who receive off duty."""
        seeds = []
        for o in self.province.officials:
            if o.trait != "off_duty" or self.rng.random() >= self.params.act_rate("off_duty"):
                continue
            offices = [
                off
                for lv in ("commune", "district", "province")
                for off in self.province.offices[lv]
                if off.desk.code == o.agency
            ]
            office = self.rng.choice(offices)
            level = office.agency.level
            for _ in range(5):
                picked = self.pick(level, d)
                if picked and office in self.province.menus[level].office_of[picked[1].code]:
                    break
            else:
                continue
            v = picked[1]
            local = datetime(d.year, d.month, d.day, 8, 0, tzinfo=cal.tz) + timedelta(
                minutes=self.rng.uniform(0, 180)
            )
            seeds.append(
                self.seed_for(
                    office,
                    v,
                    local.replace(microsecond=0),
                    receiver=o,
                    channel="direct",
                    off_duty=True,
                )
            )
        return seeds

    # --- dossiers -----------------------------------------------------------------------

    def dossier(self, s: Seed) -> None:
        d = s.at.date()
        key = (s.office.agency.code, d)
        self.seq[key] += 1
        dossier_id = f"{s.office.agency.code}-{d:%y%m%d}-{self.seq[key]:04d}"
        to_paper = False
        if s.channel == "direct":
            window = timedelta(days=self.params.online_to_paper_window_days)
            for t in self.setbacks.get((s.applicant["id_number"], s.version.code), ()):
                if t <= s.at and s.at - t <= window:
                    to_paper = True
        intake = Intake(
            dossier_id=dossier_id,
            ordinal=s.order,
            office=s.office,
            receiver=s.receiver,
            version=s.version,
            channel=s.channel,
            applicant=s.applicant,
            received_at=s.at,
            superseded=s.superseded,
            off_duty=s.off_duty,
            online_to_paper=to_paper,
        )
        world = self.world(s.at, s.office.agency.code)
        out = Script(world, intake).run()
        self.status[out.status] += 1
        if out.late is not None:
            self.finished += 1
            self.late += bool(out.late)
        self.channels[s.channel] += 1
        for event in out.events:
            heapq.heappush(self.pending, event)
        for kind, eid in out.labels:
            self.labelled.setdefault(eid, []).append((kind, dossier_id))
        if out.setbacks:
            key2 = (s.applicant["id_number"], s.version.code)
            self.setbacks.setdefault(key2, []).extend(out.setbacks)
        if out.push_to_paper is not None:
            cal = world.cal
            day = cal.add_working_days(
                out.push_to_paper.astimezone(cal.tz).date(), self.rng.randint(1, 5)
            )
            if day < self.end:
                self.follow_ups.setdefault(day, []).append((s.office, s.version.code, s.applicant))

    def run(
        self, out: IO[str], labels: IO[str] | None, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Simulate day by day, writing events as soon as no later receipt can precede them.

        Memory holds only what is still to come: the events of dossiers in flight,
        setbacks within the online-to-paper window and the day's counters, so a
        province-year streams to ``out`` (and its labels to ``labels``) as it goes.
        """
        self.label_out = labels
        for k in range(self.days):
            d = self.start + timedelta(days=k)
            cal = self.calendar(d)
            seeds = self.working_day(d, cal) if cal.is_working_day(d) else self.day_off(d, cal)
            seeds.sort(key=lambda s: (s.at, s.order))
            for s in seeds:
                self.dossier(s)
            nxt = d + timedelta(days=1)
            self.flush(out, datetime(nxt.year, nxt.month, nxt.day, tzinfo=cal.tz))
            self.forget_before(d)
            if progress is not None:
                progress(1)
        self.flush(out, None)
        return self.summary()

    def forget_before(self, d: date) -> None:
        """Drop what no later receipt can look at: past days' sequence counters and
        setbacks older than the online-to-paper window (with a day's margin)."""
        for key in [k for k in self.seq if k[1] < d]:
            del self.seq[key]
        if d.day != 1:  # the setbacks are pruned once a month: a scan of them all
            return
        cutoff = datetime(d.year, d.month, d.day, tzinfo=UTC) - timedelta(
            days=self.params.online_to_paper_window_days + 2
        )
        for key in [k for k, ts in self.setbacks.items() if max(ts) < cutoff]:
            del self.setbacks[key]

    def flush(self, out: IO[str], before: datetime | None) -> None:
        """Write buffered events that occurred before ``before`` (all if None), in order."""
        heap = self.pending
        while heap and (before is None or heap[0][0] < before):
            at, _, _, event_id, line = heapq.heappop(heap)
            if event_id in self.labelled:
                for kind, dossier_id in sorted(self.labelled.pop(event_id)):
                    self.label_kinds[kind] += 1
                    if self.label_out is not None:
                        self.label_out.write(
                            json.dumps(
                                {"dossier_id": dossier_id, "kind": kind, "event_id": event_id}
                            )
                        )
                        self.label_out.write("\n")
            out.write(line)
            out.write("\n")
            self.written += 1
            if self.first_event is None:
                self.first_event = at
            self.last_event = at

    # --- output ----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        status, finished, late, kinds = self.status, self.finished, self.late, self.label_kinds
        misbehaving = sum(1 for o in self.province.officials if o.trait)
        return {
            "seed": self.seed,
            "days": self.days,
            "start": self.start.isoformat(),
            "end": (self.end - timedelta(days=1)).isoformat(),
            "date_range": {
                "first_event": self.first_event.date().isoformat() if self.first_event else None,
                "last_event": self.last_event.date().isoformat() if self.last_event else None,
            },
            "dossiers": sum(status.values()),
            "events": self.written,
            "labels": sum(kinds.values()),
            "labels_by_kind": dict(sorted(kinds.items())),
            "finished": finished,
            "late": late,
            "on_time_rate": round(1 - late / finished, 4) if finished else None,
            "status": dict(sorted(status.items())),
            "channels": dict(sorted(self.channels.items())),
            "agencies": len(self.province.agencies),
            "officials": len(self.province.officials),
            "misbehaving_officials": misbehaving,
        }
