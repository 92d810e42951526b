"""The event script of one dossier, and the labels of what went wrong in it.

Flow (domain brief §3): receipt at the desk -> intake step -> handover to the
appraiser (15:00 rule) -> appraisal (optional consultation of another body,
supplement requests, bounces) -> handover to the approver -> approval and
result -> handover back to the desk -> return -> feedback. An apology comes
before the due when the office sees the dossier will be late.

Labels record the simulator's own decisions: every injected act, and every
irregularity that arises on its own (a slow official overrunning a step budget,
a dossier late with no timely apology), each pointing at its evidence event.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.catalog import Catalog, ProcedureVersion
from ledger.domain.deadlines import classify_finished, classify_open
from ledger.domain.durations import Duration
from ledger.domain.rules import RuleSet
from ledger.domain.working_calendar import BusinessCalendar
from simulator.apology import apologise
from simulator.behaviour import Params, pace_factor, sitting_factor
from simulator.province import Office, Official
from simulator.texts import PUSH_TO_PAPER, REFUSAL_REASONS, SUPPLEMENT_REASONS
from simulator.timing import Timing, fmt


@dataclass
class World:
    """What every dossier script shares: the generator, the rules, the catalog."""

    rng: random.Random
    params: Params
    catalog: Catalog
    rule_set: RuleSet
    cal: BusinessCalendar
    timing: Timing


@dataclass
class Intake:
    """What is decided at receipt."""

    dossier_id: str
    ordinal: int
    office: Office
    receiver: Official
    version: ProcedureVersion
    channel: str
    applicant: dict[str, str]
    received_at: datetime
    superseded: bool = False
    off_duty: bool = False
    online_to_paper: bool = False


@dataclass
class Outcome:
    events: list[tuple[datetime, int, int, str, str]] = field(default_factory=list)
    """(occurred_at, dossier ordinal, sequence, event_id, JSON line)."""
    labels: list[tuple[str, str]] = field(default_factory=list)  # (kind, event_id)
    status: str = "open"  # open | finished | withdrawn | awaiting_supplement
    late: bool | None = None
    setbacks: list[datetime] = field(default_factory=list)
    """Online refusals and supplement requests (for online_to_paper)."""
    push_to_paper: datetime | None = None


class Script:
    """Builds one dossier's events in occurrence order."""

    def __init__(self, world: World, intake: Intake) -> None:
        self.w = world
        self.rng = world.rng
        self.t = world.timing
        self.i = intake
        self.out = Outcome()
        self._seq = 0
        self._backdated = False
        self._due0 = intake.received_at
        self._allowance = Duration(7, "working_days")

    # --- emission ------------------------------------------------------------

    def act(self, trait: str, official: Official) -> bool:
        """Whether ``official``'s trait ``trait`` acts on this opportunity."""
        return official.trait == trait and self.rng.random() < self.w.params.act_rate(trait)

    def emit(
        self,
        etype: str,
        at: datetime,
        actor: Official | tuple[str, str, str],
        data: dict[str, Any],
        *,
        role: str | None = None,
        may_backdate: bool = False,
    ) -> str:
        rng = self.rng
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if isinstance(actor, tuple):
            actor_obj = {"id": actor[0], "role": actor[1], "agency": actor[2]}
            official = None
        else:
            actor_obj = {"id": actor.id, "role": role or actor.role, "agency": actor.agency}
            official = actor
        if self.i.channel == "online":
            delay = timedelta(seconds=rng.randint(2, 90))
        elif etype == "DossierReceived":
            delay = timedelta(seconds=rng.randint(60, 900))
        else:
            delay = timedelta(seconds=rng.randint(60, 7200))
        recorded = at + delay
        if (
            may_backdate
            and official is not None
            and not self._backdated
            and self.act("backdater", official)
        ):
            # written up days later, claiming the earlier instant
            recorded = self.t.after(at, self.rng.uniform(1.5, 4.0) * self.t.day_minutes)
            self._backdated = True
            self.label("backdated_event", event_id)
        env = {
            "event_id": event_id,
            "dossier_id": self.i.dossier_id,
            "type": etype,
            "occurred_at": fmt(at),
            "recorded_at": fmt(recorded),
            "actor": actor_obj,
            "data": data,
            "schema_version": 2,
        }
        self._seq += 1
        line = json.dumps(env, ensure_ascii=False, separators=(",", ":"))
        self.out.events.append((at, self.i.ordinal, self._seq, event_id, line))
        return event_id

    def label(self, kind: str, event_id: str) -> None:
        self.out.labels.append((kind, event_id))

    def applicant_actor(self) -> tuple[str, str, str]:
        return (f"applicant:{self.i.dossier_id}", "applicant", self.i.office.desk.code)

    # --- the flow ----------------------------------------------------------------

    def run(self) -> Outcome:
        i, t, rng, p = self.i, self.t, self.rng, self.w.params
        v = i.version
        cal, rs = self.w.cal, self.w.rule_set
        allowance = v.allowance or Duration(7, "working_days")
        due0 = cal.due(i.received_at, allowance)
        self._due0, self._allowance = due0, allowance
        consult = v.consultation and rng.random() < p.consultation_rate
        data: dict[str, Any] = {
            "procedure_code": v.code,
            "procedure_version": v.version,
            "agency": i.office.agency.code,
            "channel": i.channel,
            "online_level": v.online_level,
            "applicant": i.applicant,
            "documents": list(v.documents),
            "processing_time": allowance.to_json(),
            "appointment_at": fmt(due0),
            "rule_set": rs.id,
        }
        if consult:
            data["lead_agency"] = i.office.agency.code
        received_id = self.emit("DossierReceived", i.received_at, i.receiver, data)
        for flag, kind in (
            (i.superseded, "superseded_procedure"),
            (i.off_duty, "off_duty_receipt"),
            (i.online_to_paper, "online_to_paper"),
        ):
            if flag:
                self.label(kind, received_id)

        # intake and forwarding (Art 18: the 15:00 rule)
        intake_minutes = t.budget_minutes(i.received_at, v.step("intake").budget)
        if i.channel != "online" and self.act("sits_at_desk", i.receiver):
            fwd_minutes = rng.uniform(1.2, 3.0) * t.day_minutes
        else:
            fwd_minutes = rng.uniform(2, 20) if i.channel == "online" else rng.uniform(5, 90)
            fwd_minutes = max(2.0, min(fwd_minutes, 0.9 * intake_minutes))
        done_intake = t.after(i.received_at, fwd_minutes)
        self.emit(
            "StepCompleted", done_intake, i.receiver, {"step": "intake", "outcome": "complete"}
        )
        appraiser = rng.choice(i.office.appraisers)
        fwd_at = t.after(done_intake, 1)
        appraisal_budget = v.step("appraisal").budget
        if consult:
            appraisal_budget = Duration(
                round(appraisal_budget.value + v.step("consultation").budget.value, 2),
                appraisal_budget.unit,
            )
        fwd_id = self.handover(fwd_at, i.receiver, appraiser, "appraisal", appraisal_budget)
        limit = cal.add_working_time(
            cal.forwarding_deadline(i.received_at, i.channel),
            timedelta(hours=rs.forwarding_grace.value)
            if rs.forwarding_grace.unit == "working_hours"
            else rs.forwarding_grace.value * cal.working_day_length,
        )
        if fwd_at > limit:
            self.label("late_forwarding", fwd_id)

        appraisal = self.appraise(fwd_at, fwd_id, appraiser, appraisal_budget, consult)
        if appraisal is None:
            return self.out
        done_at, last_complete, pauses, refuse_hint = appraisal

        # approval
        approver = rng.choice(i.office.approvers)
        approver_role = "approver"
        double_hat = self.act("double_hat", i.receiver)
        if double_hat:
            approver = i.receiver
        to_approval = t.after(done_at, rng.uniform(2, 20))
        approval_budget = v.step("approval").budget
        approval_id = self.handover(to_approval, appraiser, approver, "approval", approval_budget)
        sits = self.act("sitter", approver)
        factor = sitting_factor(rng) if sits else pace_factor(rng, approver.pace)
        approved_at = t.plan_end(to_approval, approval_budget, factor)
        used = t.used(to_approval, approved_at, approval_budget)
        if used is not None and used > 1.0:
            self.label("idle_beyond_allotment", approval_id)
        curt = self.act("curt_refusal", approver)
        refused = curt or refuse_hint or rng.random() < p.refusal_rate
        decision = "refused" if refused else "approved"
        self.emit(
            "StepCompleted",
            approved_at,
            approver,
            {"step": "approval", "outcome": decision},
            role=approver_role,
            may_backdate=True,
        )
        result_at = t.after(approved_at, rng.uniform(1, 15))
        result: dict[str, Any] = {"decision": decision}
        if refused and not curt:
            result["reason"] = (
                "Hồ sơ trực tuyến không hợp lệ; " + PUSH_TO_PAPER
                if refuse_hint
                else rng.choice(REFUSAL_REASONS)
            )
        result_id = self.emit(
            "ResultIssued", result_at, approver, result, role=approver_role, may_backdate=True
        )
        if refused and i.channel == "online":
            self.out.setbacks.append(result_at)
            if refuse_hint:
                self.out.push_to_paper = result_at
        if curt:
            self.label("refusal_without_reason", result_id)
        if double_hat:
            self.label("same_official_receive_approve", result_id)

        # deadline of record and apology (19(9))
        if rs.supplement_mode == "restart" or not pauses:
            due = cal.due(last_complete, allowance) if last_complete else due0
        else:
            paused = sum((cal.working_time(a, b) for a, b in pauses), timedelta())
            due = cal.add_working_time(due0, paused)
        late = classify_finished(result_at, due, rs.granularity, cal.tz) == "LATE"
        self.out.late = late
        self.out.status = "finished"
        if late:
            apologise(self, due, result_at, last_complete or i.received_at, result_id)

        # back to the desk, return, feedback
        desk_pool = [r for r in i.office.receivers if r.id != approver.id] or i.office.receivers
        returner = rng.choice(desk_pool)
        back_at = t.after(result_at, rng.uniform(2, 30))
        return_budget = v.step("return").budget
        back_id = self.handover(back_at, approver, returner, "return", return_budget)
        notified = t.plan_end(back_at, return_budget, rng.uniform(0.05, 0.5))
        used = t.used(back_at, notified, return_budget)
        if used is not None and used > 1.0:
            self.label("idle_beyond_allotment", back_id)
        self.emit("StepCompleted", notified, returner, {"step": "return", "outcome": "notified"})
        if i.channel == "online":
            returned_at = t.after(notified, rng.uniform(1, 10))
            self.emit("ResultReturned", returned_at, returner, {"channel": "online"})
        elif i.channel == "postal":
            returned_at = t.after(notified, rng.uniform(1, 3) * t.day_minutes)
            postal = (f"VNPOST.{i.office.desk.code}", "postal", i.office.desk.code)
            self.emit("ResultReturned", returned_at, postal, {"channel": "postal"})
        else:
            returned_at = t.after(notified, rng.uniform(0.02, 3) * t.day_minutes)
            self.emit("ResultReturned", returned_at, returner, {"channel": "direct"})
        if rng.random() < p.feedback_rate:
            unhappy = late or refused or len(pauses) > 1
            rating = rng.choice((1, 2, 3)) if unhappy else rng.choice((4, 5, 5, 5))
            feedback: dict[str, Any] = {"rating": rating}
            if unhappy and rng.random() < 0.3 or rng.random() < p.complaint_rate:
                feedback["complaint"] = True
                feedback["comment"] = "Phản ánh về thái độ và thời gian giải quyết"
            at = t.after(returned_at, rng.uniform(5, 2 * t.day_minutes))
            self.emit("FeedbackGiven", at, self.applicant_actor(), feedback)
        return self.out

    def handover(
        self,
        at: datetime,
        giver: Official,
        taker: Official,
        step: str,
        budget: Duration | None,
        *,
        note: str | None = None,
    ) -> str:
        data: dict[str, Any] = {
            "from_official": giver.id,
            "from_agency": giver.agency,
            "to_official": taker.id,
            "to_agency": taker.agency,
            "step": step,
            "acknowledged": True,
        }
        if budget is not None:
            data["budget"] = budget.to_json()
        if note:
            data["note"] = note
        return self.emit("HandedOver", at, giver, data, may_backdate=False)

    def overran(
        self,
        start: datetime,
        end: datetime,
        budget: Duration,
        pauses: list[tuple[datetime, datetime]],
        handover_id: str,
    ) -> None:
        """Label a holding that stops early (withdrawal, a supplement never answered) but had
        already outlived its budget by then."""
        used = self.t.used(start, end, budget, pauses)
        if used is not None and used > 1.0:
            self.label("idle_beyond_allotment", handover_id)

    # --- appraisal -------------------------------------------------------------------

    def appraise(
        self,
        start: datetime,
        handover_id: str,
        appraiser: Official,
        budget: Duration,
        consult: bool,
    ) -> tuple[datetime, datetime | None, list[tuple[datetime, datetime]], bool] | None:
        """The appraiser's holding. Returns (done, last complete-dossier instant, supplement
        waits, refusal pushed to paper), or None if the dossier stops here."""
        i, t, rng, p = self.i, self.t, self.rng, self.w.params
        cal, rs = self.w.cal, self.w.rule_set
        v = i.version
        sits = self.act("sitter", appraiser)
        factor = sitting_factor(rng) if sits else pace_factor(rng, appraiser.pace)
        left = max(3.0, factor * t.budget_minutes(start, budget))
        cursor = start
        pauses: list[tuple[datetime, datetime]] = []
        last_complete: datetime | None = None
        first_out: datetime | None = None  # the appraiser's first handover out
        reply_at: datetime | None = None

        def spend(share: float) -> None:
            nonlocal cursor, left
            m = max(1.0, min(left - 1.0, left * share))
            cursor = t.after(cursor, m)
            left -= m

        if rng.random() < p.withdrawal_rate:
            spend(rng.uniform(0.1, 0.4))
            self.emit(
                "DossierWithdrawn",
                cursor,
                self.applicant_actor(),
                {"reason": "Người nộp rút hồ sơ"},
            )
            self.out.status = "withdrawn"
            self.overran(start, cursor, budget, [], handover_id)
            return None

        if consult and i.office.partner is not None:
            spend(0.1)
            partner = rng.choice(i.office.partner.appraisers)
            consult_budget = v.step("consultation").budget
            self.emit(
                "TransferredToAgency",
                cursor,
                appraiser,
                {
                    "to_agency": partner.agency,
                    "task": "Lấy ý kiến thẩm định",
                    "budget": consult_budget.to_json(),
                    "lead_agency": i.office.agency.code,
                },
            )
            reply_at = t.plan_end(cursor, consult_budget, rng.uniform(0.2, 0.9))
            self.emit(
                "StepCompleted",
                reply_at,
                partner,
                {"step": "consultation", "outcome": "opinion_given"},
                role="handler",
            )

        # supplement requests (19(4)): legit ones within the window, misconduct otherwise
        window_end = cal.office_end(
            cal.add_working_days(
                i.received_at.astimezone(cal.tz).date(), int(rs.supplement_request_window.value)
            )
        )
        pushes = (
            i.channel == "online"
            and "direct" in v.channels
            and self.act("pushes_to_paper", appraiser)
        )
        refuse_hint = False
        extra = self.act("extra_documents", appraiser)
        late_req = self.act("late_supplement", appraiser)
        piecemeal = self.act("piecemeal", appraiser)
        if pushes and rng.random() < 0.5:
            refuse_hint, pushes = True, False
        requests = 0
        if pushes or extra or late_req or piecemeal or rng.random() < p.supplement_rate:
            requests = 2 if piecemeal else 1
        for n in range(requests):
            if n == 0 and late_req:
                day = cal.add_working_days(
                    i.received_at.astimezone(cal.tz).date(), rng.randint(4, 7)
                )
                at = t.at_day(day, rng.uniform(20, t.day_minutes - 30))
                if at <= cursor:
                    at = t.after(cursor, rng.uniform(10, 60))
                cursor = at
            elif n == 0:
                share = rng.uniform(0.05, 0.3)
                room = t.minutes_between(cursor, window_end) - 5
                m = min(left * share, room) if room > 1 else left * share
                m = max(1.0, min(m, left - 1.0))
                cursor = t.after(cursor, m)
                left = max(1.0, left - m)
            else:
                cursor = t.after(cursor, rng.uniform(30, 240))
            desk = rng.choice(i.office.receivers)
            docs = list(rng.sample(list(v.documents), min(len(v.documents), rng.randint(1, 2))))
            reason = rng.choice(SUPPLEMENT_REASONS)
            actor, role = desk, "receiver"
            unlisted = extra and n == requests - 1
            if unlisted:
                docs = [*docs[:1], rng.choice(self.w.catalog.extra_documents)]
                if rng.random() < 0.5:
                    actor, role = appraiser, "appraiser"
            if pushes:
                reason = PUSH_TO_PAPER
            req_id = self.emit(
                "SupplementRequested",
                cursor,
                actor,
                {"documents": docs, "reason": reason, "stage": "appraisal"},
                role=role,
            )
            if unlisted:
                self.label("unlisted_document_requested", req_id)
            if n == 1:
                self.label("repeated_supplement", req_id)
            if rs.supplement_mode == "restart":
                # the due of record passed while the clock ran, before the request that
                # restarts it: late with no apology by then (brief §8.4 "the end (or now)")
                due_now = cal.due(last_complete, self._allowance) if last_complete else self._due0
                if classify_open(cursor, due_now, rs.granularity, cal.tz) == "OVERDUE":
                    self.label("late_without_apology", req_id)
            days_late = cal.working_days_between(
                i.received_at.astimezone(cal.tz).date(), cursor.astimezone(cal.tz).date()
            )
            if days_late > rs.supplement_request_window.value:
                self.label("late_supplement_request", req_id)
            if i.channel == "online":
                self.out.setbacks.append(cursor)
            if pushes:
                self.out.push_to_paper = cursor
                self.out.status = "awaiting_supplement"
                self.overran(start, cursor, budget, pauses, handover_id)
                return None
            if rng.random() < p.supplement_abandon_rate:
                self.out.status = "awaiting_supplement"
                self.overran(start, cursor, budget, pauses, handover_id)
                return None
            back = t.after(cursor, rng.uniform(0.3, 6.0) * t.day_minutes)
            answer: dict[str, Any] = {"documents": docs}
            if rs.supplement_mode == "restart":  # the restarted appointment, synced (19(4))
                answer["new_appointment_at"] = fmt(
                    cal.due(back, v.allowance or Duration(7, "working_days"))
                )
            self.emit("SupplementReceived", back, rng.choice(i.office.receivers), answer)
            pauses.append((cursor, back))
            last_complete = back
            cursor = back

        bounce_id = None
        if self.act("bouncer", appraiser) and i.office.partner is not None:
            spend(0.3)
            other = rng.choice(i.office.partner.appraisers)
            notes = ("Chuyển xin ý kiến", "Trả lại: không thuộc thẩm quyền")
            for leg in range(4):
                giver, taker = (appraiser, other) if leg % 2 == 0 else (other, appraiser)
                if leg:
                    cursor = t.after(cursor, rng.uniform(60, 0.8 * t.day_minutes))
                if first_out is None:
                    first_out = cursor
                bounce_id = self.handover(
                    cursor, giver, taker, "appraisal", None, note=notes[leg % 2]
                )
            self.label("ping_pong", bounce_id)
            cursor = t.after(cursor, 5)

        done = t.after(cursor, left)
        if reply_at is not None and done <= reply_at:
            done = t.after(reply_at, rng.uniform(10, 120))
        end_of_holding = first_out or done
        used = t.used(start, end_of_holding, budget, pauses)
        if used is not None and used > 1.0:
            self.label("idle_beyond_allotment", handover_id)
        self.emit(
            "StepCompleted",
            done,
            appraiser,
            {"step": "appraisal", "outcome": "proposal"},
            may_backdate=True,
        )
        return done, last_complete, pauses, refuse_hint
