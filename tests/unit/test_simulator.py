"""The simulator: determinism, valid envelopes the ledger accepts, dossier codes, and
labels that match what the events show.

The label checks re-derive several kinds straight from the written events (an
independent reading of the same facts), so a label the simulator forgets, or
one it writes for nothing, fails a test.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.catalog import load_catalog
from ledger.domain.events import validate
from ledger.domain.rules import load_rules
from ledger.domain.signal_kinds import KINDS
from ledger.domain.working_calendar import BusinessCalendar
from simulator import Params, simulate

CODE = re.compile(r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z]\d{2}-\d{6}-\d{4}$")
RULES = load_rules()


def run(days: int, seed: int, **kw: Any) -> tuple[str, str, dict[str, Any]]:
    out, labels = io.StringIO(), io.StringIO()
    summary = simulate(days, seed, out, labels, **kw)
    return out.getvalue(), labels.getvalue(), summary


@pytest.fixture(scope="module")
def month() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """30 days, seed 1, default parameters."""
    events, labels, summary = run(30, 1)
    return (
        [json.loads(line) for line in events.splitlines()],
        [json.loads(line) for line in labels.splitlines()],
        summary,
    )


def by_dossier(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for env in events:
        out[env["dossier_id"]].append(env)
    return out


def labelled(labels: list[dict[str, Any]], kind: str) -> set[str]:
    return {row["dossier_id"] for row in labels if row["kind"] == kind}


def cal_for(env: dict[str, Any]) -> BusinessCalendar:
    at = datetime.fromisoformat(env["occurred_at"])
    return BusinessCalendar.for_rules(RULES.in_force(at), env["data"]["agency"])


def local_date(value: str, cal: BusinessCalendar) -> date:
    return datetime.fromisoformat(value).astimezone(cal.tz).date()


# --- determinism and validity ---------------------------------------------------------


def test_same_seed_same_bytes() -> None:
    assert run(5, 7) == run(5, 7)


def test_different_seeds_differ() -> None:
    assert run(3, 1)[0] != run(3, 2)[0]


def test_every_line_validates_and_ids_are_unique(month) -> None:
    events, _, summary = month
    for env in events:
        validate(env)
    assert len({e["event_id"] for e in events}) == len(events) == summary["events"]


def test_dossier_codes_match_the_format_and_the_receipt_date(month) -> None:
    events, _, summary = month
    receipts = [e for e in events if e["type"] == "DossierReceived"]
    assert len(receipts) == summary["dossiers"]
    assert len({e["dossier_id"] for e in receipts}) == len(receipts)
    for env in receipts:
        assert CODE.match(env["dossier_id"]), env["dossier_id"]
        yymmdd = env["dossier_id"].split("-")[1]
        assert yymmdd == local_date(env["occurred_at"], cal_for(env)).strftime("%y%m%d")
        assert env["occurred_at"].endswith("+07:00")


def test_each_dossier_starts_with_its_receipt_in_occurrence_order(month) -> None:
    for envs in by_dossier(month[0]).values():
        assert envs[0]["type"] == "DossierReceived"
        times = [datetime.fromisoformat(e["occurred_at"]) for e in envs]
        assert times == sorted(times)


def test_officials_act_in_office_hours_except_off_duty_receipts(month) -> None:
    events, labels, _ = month
    off_duty = {r["event_id"] for r in labels if r["kind"] == "off_duty_receipt"}
    for envs in by_dossier(events).values():
        cal = cal_for(envs[0])
        for env in envs:
            if env["event_id"] in off_duty:
                continue
            assert cal.in_office_hours(datetime.fromisoformat(env["occurred_at"])), env


def test_a_short_simulation_is_accepted_by_a_fresh_ledger(tmp_path: Path) -> None:
    from ledger.bootstrap import open_ledger
    from ledger.ingest import ingest_lines
    from ledger.settings import Settings

    events, _, summary = run(4, 3, start=date(2025, 9, 29))
    report = ingest_lines(open_ledger(Settings.from_env(tmp_path)), events.splitlines())
    assert report.rejected == 0, [str(e) for e in report.errors[:3]]
    assert report.stored == summary["events"]


# --- summary --------------------------------------------------------------------------------


def test_default_on_time_rate_is_in_the_real_range(month) -> None:
    assert 0.96 <= month[2]["on_time_rate"] <= 0.99


def test_scale_parameter_scales_the_volume() -> None:
    small = run(5, 1, params=Params(dossiers_per_day=30))[2]
    large = run(5, 1)[2]
    assert small["dossiers"] * 5 < large["dossiers"]


def test_tet_dip_before_and_surge_after() -> None:
    # Tết 2026 starts on 17 Feb; compare a week in the dip with a week in the surge.
    before = run(7, 1, start=date(2026, 2, 2), params=Params(dossiers_per_day=50))[2]
    after = run(7, 1, start=date(2026, 3, 2), params=Params(dossiers_per_day=50))[2]
    assert after["dossiers"] > 1.5 * before["dossiers"]


def test_no_misconduct_means_few_labels_and_high_on_time() -> None:
    params = Params(trait_officials={}, dossiers_per_day=100)
    _, labels, summary = run(10, 1, params=params)
    kinds = Counter(json.loads(line)["kind"] for line in labels.splitlines())
    injected_only = set(KINDS) - {
        "idle_beyond_allotment",
        "late_without_apology",
        "late_supplement_request",
        "late_forwarding",
        "online_to_paper",
    }
    assert not injected_only & set(kinds)
    assert summary["on_time_rate"] > 0.99


# --- labels ---------------------------------------------------------------------------------


def test_labels_point_at_events_of_the_named_dossier(month) -> None:
    events, labels, summary = month
    owner = {e["event_id"]: e["dossier_id"] for e in events}
    for row in labels:
        assert set(row) == {"dossier_id", "kind", "event_id"}
        assert row["kind"] in KINDS
        assert owner[row["event_id"]] == row["dossier_id"]
    assert sum(summary["labels_by_kind"].values()) == len(labels)


def test_every_kind_appears_in_a_month(month) -> None:
    kinds = Counter(row["kind"] for row in month[1])
    assert set(kinds) == set(KINDS), set(KINDS) - set(kinds)


def test_receipt_labels_match_calendar_and_catalog(month) -> None:
    events, labels, _ = month
    catalog = load_catalog()
    off, stale = set(), set()
    for env in events:
        if env["type"] != "DossierReceived":
            continue
        cal = cal_for(env)
        day = local_date(env["occurred_at"], cal)
        if not cal.is_working_day(day):
            off.add(env["dossier_id"])
        d = env["data"]
        if not catalog.is_valid(d["procedure_code"], d["procedure_version"], day):
            stale.add(env["dossier_id"])
    assert off == labelled(labels, "off_duty_receipt")
    assert stale == labelled(labels, "superseded_procedure")


def test_result_and_supplement_labels_match_the_events(month) -> None:
    events, labels, _ = month
    catalog = load_catalog()
    same, curt, repeated, unlisted, late_req, apologies = set(), set(), set(), set(), set(), set()
    for dossier_id, envs in by_dossier(events).items():
        received = envs[0]
        cal = cal_for(received)
        version = catalog.version(
            received["data"]["procedure_code"], received["data"]["procedure_version"]
        )
        requests = 0
        n_apologies = 0
        for env in envs:
            if env["type"] == "ResultIssued":
                if env["actor"]["id"] == received["actor"]["id"]:
                    same.add(dossier_id)
                if env["data"]["decision"] == "refused" and not env["data"].get("reason"):
                    curt.add(dossier_id)
            elif env["type"] == "SupplementRequested":
                requests += 1
                if requests >= 2:
                    repeated.add(dossier_id)
                docs = env["data"]["documents"]
                if env["actor"]["role"] != "receiver" or any(
                    d not in version.documents for d in docs
                ):
                    unlisted.add(dossier_id)
                waited = cal.working_days_between(
                    local_date(received["occurred_at"], cal), local_date(env["occurred_at"], cal)
                )
                if waited > 3:
                    late_req.add(dossier_id)
            elif env["type"] == "ApologyIssued":
                n_apologies += 1
                assert env["data"].get("reason") and env["data"].get("new_appointment_at")
                if n_apologies >= 2:
                    apologies.add(dossier_id)
    assert same == labelled(labels, "same_official_receive_approve")
    assert curt == labelled(labels, "refusal_without_reason")
    assert repeated == labelled(labels, "repeated_supplement")
    assert unlisted == labelled(labels, "unlisted_document_requested")
    assert late_req == labelled(labels, "late_supplement_request")
    assert apologies == labelled(labels, "repeated_apology")


def test_forwarding_backdating_and_ping_pong_labels_match_the_events(month) -> None:
    events, labels, _ = month
    rs = RULES.latest
    late_fwd, backdated, ping = set(), set(), set()
    for dossier_id, envs in by_dossier(events).items():
        received = envs[0]
        cal = cal_for(received)
        channel = received["data"]["channel"]
        handovers = [e for e in envs if e["type"] == "HandedOver"]
        if handovers:
            deadline = cal.forwarding_deadline(
                datetime.fromisoformat(received["occurred_at"]), channel
            )
            limit = cal.add_working_time(deadline, timedelta(hours=rs.forwarding_grace.value))
            if datetime.fromisoformat(handovers[0]["occurred_at"]) > limit:
                late_fwd.add(dossier_id)
        for env in envs:
            occurred = datetime.fromisoformat(env["occurred_at"])
            recorded = datetime.fromisoformat(env["recorded_at"])
            if channel == "online":
                if recorded - occurred > timedelta(minutes=15):
                    backdated.add(dossier_id)
            elif cal.working_time(occurred, recorded) > cal.working_day_length:
                backdated.add(dossier_id)
        chain = [(h["data"]["from_official"], h["data"]["to_official"]) for h in handovers]
        returns = sum(
            1 for a, b in zip(chain, chain[1:], strict=False) if a[0] == b[1] and a[1] == b[0]
        )
        if returns >= 3:  # A->B->A->B->A: two round trips
            ping.add(dossier_id)
    assert late_fwd == labelled(labels, "late_forwarding")
    assert backdated == labelled(labels, "backdated_event")
    assert ping == labelled(labels, "ping_pong")


def test_online_to_paper_labels_match_the_events(month) -> None:
    events, labels, _ = month
    setbacks: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    receipts = {}
    expected = set()
    for dossier_id, envs in by_dossier(events).items():
        receipts[dossier_id] = envs[0]
        if envs[0]["data"]["channel"] != "online":
            continue
        key = (envs[0]["data"]["applicant"]["id_number"], envs[0]["data"]["procedure_code"])
        for env in envs:
            if env["type"] == "SupplementRequested" or (
                env["type"] == "ResultIssued" and env["data"]["decision"] == "refused"
            ):
                setbacks[key].append(datetime.fromisoformat(env["occurred_at"]))
    for dossier_id, env in receipts.items():
        if env["data"]["channel"] != "direct":
            continue
        at = datetime.fromisoformat(env["occurred_at"])
        key = (env["data"]["applicant"]["id_number"], env["data"]["procedure_code"])
        if any(t <= at <= t + timedelta(days=30) for t in setbacks.get(key, ())):
            expected.add(dossier_id)
    assert expected == labelled(labels, "online_to_paper")


def test_late_dossiers_without_a_timely_apology_are_labelled(month) -> None:
    events, labels, summary = month
    late_no_apology = set()
    late = 0
    for dossier_id, envs in by_dossier(events).items():
        received = envs[0]
        cal = cal_for(received)
        start = received["occurred_at"]
        for env in envs:
            if env["type"] == "SupplementReceived":
                start = env["occurred_at"]  # restart mode: the clock restarts (19(4))
        due_now = datetime.fromisoformat(received["data"]["appointment_at"])
        for env in envs:  # overdue before a request restarted the clock
            if env["type"] == "SupplementReceived":
                due_now = cal.due(
                    datetime.fromisoformat(env["occurred_at"]),
                    received["data"]["processing_time"],
                )
            elif (
                env["type"] == "SupplementRequested"
                and local_date(env["occurred_at"], cal) > due_now.astimezone(cal.tz).date()
            ):
                late_no_apology.add(dossier_id)
        results = [e for e in envs if e["type"] == "ResultIssued"]
        if not results:
            continue
        due = cal.due(
            datetime.fromisoformat(start),
            received["data"]["processing_time"],
        )
        due_day = due.astimezone(cal.tz).date()
        if local_date(results[0]["occurred_at"], cal) <= due_day:
            continue
        late += 1
        latest = cal.add_working_days(due_day, -1)
        timely = [
            e
            for e in envs
            if e["type"] == "ApologyIssued" and local_date(e["occurred_at"], cal) <= latest
        ]
        if not timely:
            late_no_apology.add(dossier_id)
    assert late == summary["late"]
    assert late_no_apology == labelled(labels, "late_without_apology")


def test_idle_labels_match_the_step_budgets(month) -> None:
    from ledger.domain.durations import Duration
    from simulator.timing import Timing

    events, labels, _ = month
    expected = set()
    for dossier_id, envs in by_dossier(events).items():
        timing = Timing(cal_for(envs[0]))
        waits, opened, unanswered = [], None, None
        for env in envs:
            if env["type"] == "SupplementRequested":
                opened = datetime.fromisoformat(env["occurred_at"])
                unanswered = env
            elif env["type"] == "SupplementReceived":
                waits.append((opened, datetime.fromisoformat(env["occurred_at"])))
                unanswered = None
        # a holding also stops at a withdrawal or at a request never answered
        stops = [e for e in envs if e["type"] == "DossierWithdrawn"] + (
            [unanswered] if unanswered is not None else []
        )
        for k, env in enumerate(envs):
            if env["type"] != "HandedOver" or "budget" not in env["data"]:
                continue
            holder, step = env["data"]["to_official"], env["data"]["step"]
            end = next(
                (
                    e
                    for e in envs[k + 1 :]
                    if (
                        e["type"] == "StepCompleted"
                        and e["actor"]["id"] == holder
                        and e["data"]["step"] == step
                    )
                    or (e["type"] == "HandedOver" and e["data"]["from_official"] == holder)
                ),
                None,
            )
            if end is None:
                end = next((e for e in stops if e["occurred_at"] > env["occurred_at"]), None)
            if end is None:
                continue
            used = timing.used(
                datetime.fromisoformat(env["occurred_at"]),
                datetime.fromisoformat(end["occurred_at"]),
                Duration.parse(env["data"]["budget"]),
                waits,
            )
            if used is not None and used > 1.0:
                expected.add(dossier_id)
    assert expected == labelled(labels, "idle_beyond_allotment")


def test_cli_writes_events_labels_and_a_summary(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    out, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    args = ["simulate", "--days", "3", "--seed", "4", "--start", "2025-10-06"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["start"] == "2025-10-06" and summary["events"] == len(
        out.read_text(encoding="utf-8").splitlines()
    )
    assert summary["labels"] == len(labels.read_text(encoding="utf-8").splitlines())
