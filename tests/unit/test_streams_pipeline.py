"""The stream processors, pure: timers on the watermark, deadlines that move, windows
that close, and the same outputs however the events are split or partitioned."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.domain.events import Recorded
from ledger.domain.rules import load_rules
from streams.config import StreamConfig
from streams.partitioned import FACTS, EventStage, KeyedStage, bundled
from streams.pipeline import Pipeline
from streams.writeback import WriteBack
from tests.projection_factories import DossierBuilder, province, recorded, t

REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)
RULES = load_rules()


def run(records: list[Recorded], *, page: int = 50, now: str | None = None) -> dict[str, Any]:
    pipeline = Pipeline(RULES)
    out: dict[str, dict] = {"signals": {}, "alerts": {}, "metrics_daily": {}}

    def take(provisional: bool = True) -> None:
        taken = pipeline.take(provisional)
        for k in out:
            for row in taken[k]:
                key = (
                    row.get("signal_id")
                    or row.get("alert_id")
                    or (row["day"], row["window"], row["scope"], row["key"])
                )
                out[k][key] = row

    for i, rec in enumerate(records, 1):
        pipeline.feed(rec, REFERENCE)
        if i % page == 0:
            take(provisional=False)
    if now is not None:
        pipeline.push(datetime.fromisoformat(t(now)), REFERENCE)
    take()
    return out


def deadline_alerts(out: dict[str, Any], dossier: str) -> dict[str, dict]:
    return {
        a["level"]: a
        for a in out["alerts"].values()
        if a["dossier_id"] == dossier and a["kind"] == "deadline"
    }


def later(dossier: str, at: str) -> DossierBuilder:
    """Another dossier whose receipt moves business time on."""
    return DossierBuilder(dossier, at, agency="UBND-H2", receiver="rc-9")


def test_a_deadline_passes_with_no_event_of_its_own() -> None:
    a = DossierBuilder("A", "2025-09-08 08:00").handover("2025-09-08 09:00", "h1", "appraisal")
    out = run(recorded(a.envelopes + later("B", "2025-09-15 10:00").envelopes))
    alerts = deadline_alerts(out, "A")
    assert set(alerts) == {"half", "three_quarters", "due"}
    assert alerts["due"]["fired_at"] == t("2025-09-11 17:00")  # 3 working days after Monday
    assert alerts["due"]["recipients"] == ["official:h1", "head:SO-TNMT", "inspector:SO-TNMT"]
    assert alerts["half"]["recipients"] == ["official:h1"]
    assert (
        alerts["half"]["fired_at"]
        < alerts["three_quarters"]["fired_at"]
        < alerts["due"]["fired_at"]
    )
    assert all(a["replayed"] for a in alerts.values())  # 2025 seen from 2026
    # the open counts moved to overdue the day after the due day
    rows = out["metrics_daily"]
    assert rows[("2025-09-12", "day", "agency", "SO-TNMT")]["open_overdue"] == 1
    assert rows[("2025-09-11", "day", "agency", "SO-TNMT")]["open_within"] == 1


def test_no_alert_once_resolved_and_none_twice() -> None:
    a = (
        DossierBuilder("A", "2025-09-08 08:00")
        .handover("2025-09-08 09:00", "h1", "appraisal")
        .result("2025-09-10 09:00")
    )
    events = recorded(a.envelopes + later("B", "2025-09-20 10:00").envelopes)
    out = run(events)
    assert set(deadline_alerts(out, "A")) == {"half"}
    # fed again (a redelivery), page by page or all at once: nothing new, nothing different
    assert run(events + events, page=1) == out == run(events, page=10_000)


def test_an_apology_moves_the_deadline_alerts_follow() -> None:
    a = (
        DossierBuilder("A", "2025-09-08 08:00")
        .handover("2025-09-08 09:00", "h1", "appraisal")
        .apology("2025-09-10 09:00", "2025-09-17 17:00")
    )
    out = run(recorded(a.envelopes + later("B", "2025-09-25 10:00").envelopes))
    due = [x for x in out["alerts"].values() if x["dossier_id"] == "A" and x["level"] == "due"]
    assert [x["due_at"] for x in due] == [t("2025-09-17 17:00")]
    assert due[0]["params"]["original_due_at"] == t("2025-09-11 17:00")


def test_a_supplement_request_stops_the_clock_and_its_answer_restarts_it() -> None:
    a = (
        DossierBuilder("A", "2025-09-08 08:00")
        .handover("2025-09-08 09:00", "h1", "appraisal")
        .supplement_requested("2025-09-09 09:00")
    )
    waiting = run(recorded(a.envelopes + later("B", "2025-09-30 10:00").envelopes))
    assert "due" not in deadline_alerts(waiting, "A")  # restart mode: no clock while waiting
    a.supplement_received("2025-09-15 08:00")
    out = run(recorded(a.envelopes + later("B", "2025-09-30 10:00").envelopes))
    assert deadline_alerts(out, "A")["due"]["due_at"] == t("2025-09-18 17:00")


def test_windows_close_after_the_grace_and_late_events_are_counted_not_applied() -> None:
    early = DossierBuilder("A", "2025-09-08 08:00")
    late = DossierBuilder("L", "2025-09-08 15:00")  # arrives after the 8th is final
    events = recorded(early.envelopes + later("B", "2025-09-12 10:00").envelopes + late.envelopes)
    out = run(events)
    row = out["metrics_daily"][("2025-09-08", "day", "agency", "SO-TNMT")]
    assert row["final"] and row["received"] == 1 and row["late_events"] == 1
    provisional = out["metrics_daily"][("2025-09-12", "day", "agency", "UBND-H2")]
    assert not provisional["final"] and provisional["received"] == 1


def test_now_judges_the_open_dossiers_at_the_end() -> None:
    a = DossierBuilder("A", "2025-09-08 08:00")
    assert "due" not in deadline_alerts(run(recorded(a.envelopes)), "A")
    assert "due" in deadline_alerts(run(recorded(a.envelopes), now="2025-09-30 08:00"), "A")


def partitioned(
    records: list[Recorded], partitions: int, now: str, batch: int = 1
) -> dict[str, Any]:
    """The Kafka workers' stages on dicts: each partition of the log in turn (the worst
    skew), facts delivered per keyed partition in order, ticks at the end. With
    ``batch`` > 1, as ``dossier worker`` runs them: ``batch`` records at a time through
    write-back tables, and the batch's facts bundled per key."""
    config = StreamConfig()
    states, clocks, keyed = WriteBack({}), WriteBack({}), WriteBack({})
    events = EventStage(RULES, config, states, clocks, partitions=partitions)
    stage2 = KeyedStage(RULES, config, keyed, sources=partitions)
    rows: dict[str, dict] = {"signals": {}, "alerts": {}, "metrics_daily": {}}
    names = {
        "dossier.signals": "signals",
        "dossier.alerts": "alerts",
        "dossier.metrics": "metrics_daily",
    }
    sent = {"facts": 0, "records": 0}

    def deliver(out: list) -> None:
        if batch > 1:
            out = bundled(out)
        keyed_out = []
        for topic, key, value in out:
            if topic == FACTS:
                q = value["to"] if "clock" in value else zlib.crc32(key.encode()) % partitions
                keyed.partition = q
                sent["records"] += 1
                sent["facts"] += len(value.get("facts", [value]))
                keyed_out.extend(stage2.fact(q, key, value, REFERENCE))
            else:
                rows[names[topic]][key] = value
        keyed.flush()
        for _topic, key, value in keyed_out:
            rows[names[_topic]][key] = value

    def run_batch(items: list[tuple[int, Recorded | None]]) -> None:
        out = []
        for p, rec in items:
            states.partition = clocks.partition = p
            if rec is None:
                out.extend(events.tick(p, datetime.fromisoformat(t(now)), REFERENCE))
            else:
                out.extend(events.event(p, rec, REFERENCE))
        states.flush()
        clocks.flush()
        deliver(out)

    by_partition: dict[int, list[Recorded]] = {}
    for rec in records:
        p = zlib.crc32(rec.envelope["dossier_id"].encode()) % partitions
        by_partition.setdefault(p, []).append(rec)
    items: list[tuple[int, Recorded | None]] = [
        (p, rec) for p in sorted(by_partition) for rec in by_partition[p]
    ]
    items += [(p, None) for p in range(partitions)]
    for i in range(0, len(items), batch):
        run_batch(items[i : i + batch])
    deliver(stage2.provisional())
    rows["sent"] = sent
    return rows


@pytest.mark.parametrize(("partitions", "batch"), [(1, 1), (3, 1), (3, 37), (4, 500)])
def test_partitioned_workers_equal_the_embedded_pipeline(partitions: int, batch: int) -> None:
    records = recorded(province(60, seed=5))
    now = "2025-12-31 17:00"
    embedded = run(records, page=40, now=now)
    kafka = partitioned(records, partitions, now, batch)
    assert {k: v["alert_id"] for k, v in kafka["alerts"].items()}.keys() == {
        v["alert_id"] for v in embedded["alerts"].values()
    }
    assert {v["signal_id"] for v in kafka["signals"].values()} == set(embedded["signals"])
    metrics = {
        (r["day"], r["window"], r["scope"], r["key"]): r for r in kafka["metrics_daily"].values()
    }
    assert metrics == embedded["metrics_daily"]
    assert any(r["final"] for r in metrics.values()) and embedded["alerts"]
    sent = kafka["sent"]
    if batch > 1:  # the bundles carry the same facts in fewer records
        assert sent["records"] < sent["facts"]
    else:
        assert sent["records"] == sent["facts"]


def test_alert_levels_and_recipients_are_configurable(tmp_path: Any) -> None:
    from streams.config import ConfigError, load_config

    path = tmp_path / "streams.toml"
    path.write_text(
        '[streams]\nlateness = "5m"\n[[streams.level]]\nname = "due"\nshare = 1.0\n'
        'recipients = ["inspector"]\n',
        encoding="utf-8",
    )
    config = load_config(path)
    a = DossierBuilder("A", "2025-09-08 08:00").handover("2025-09-08 09:00", "h1", "appraisal")
    pipeline = Pipeline(RULES, config)
    for rec in recorded(a.envelopes + later("B", "2025-09-15 10:00").envelopes):
        pipeline.feed(rec, REFERENCE)
    alerts = pipeline.take()["alerts"]
    assert [(x["level"], x["recipients"]) for x in alerts] == [("due", ["inspector:SO-TNMT"])]
    path.write_text('[streams]\n[[streams.level]]\nname = "x"\nshare = 2\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="share"):
        load_config(path)


def test_a_finished_dossier_is_forgotten_after_its_retention() -> None:
    a = (
        DossierBuilder("A", "2025-09-08 08:00")
        .handover("2025-09-08 09:00", "h1", "appraisal")
        .result("2025-09-09 09:00")
        .returned("2025-09-09 10:00")
    )
    pipeline = Pipeline(RULES)
    records = recorded(a.envelopes + later("B", "2025-10-20 10:00").envelopes)
    for rec in records:
        pipeline.feed(rec, REFERENCE)
    assert "A" not in pipeline.dossiers and "B" in pipeline.dossiers  # memory: not the log
    assert "A" in pipeline.take()["dropped"]
    late_feedback = recorded(a.feedback("2025-10-21 08:00").envelopes[-1:], start=len(records) + 1)
    pipeline.feed(late_feedback[0], REFERENCE)  # counted, not applied, no failure
    assert pipeline.ignored == 1 and "A" not in pipeline.dossiers


def test_states_wait_between_pages_as_their_own_json_only() -> None:
    """Memory per open dossier: after ``take`` a state is its JSON, in an allocation of
    its own size (see streams/codec.py), and it decodes back to the
    very state the next event continues from."""
    import tracemalloc

    records = recorded(province(200, seed=7))
    pipeline = Pipeline(RULES)
    for rec in records[: len(records) // 2]:
        pipeline.feed(rec, REFERENCE)
    tracemalloc.start()
    try:
        taken = pipeline.take(provisional=False)
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    states = {d: s for d, s in pipeline.dossiers.items() if d in taken["dossiers"]}
    assert len(states) > 100 and all(isinstance(s, bytes) for s in states.values())
    assert taken["dossiers"] == states
    held = sum(
        stat.size
        for stat in snapshot.statistics("filename")
        if stat.traceback[0].filename.endswith("streams/pipeline.py")
    )
    assert held < 2 * sum(len(s) for s in states.values())
    # The rest of the log from the JSON states gives what an unbroken run gives.
    for rec in records[len(records) // 2 :]:
        pipeline.feed(rec, REFERENCE)
    rest = pipeline.take()
    whole = Pipeline(RULES)
    for rec in records:
        whole.feed(rec, REFERENCE)
    assert rest["dossiers"] and set(pipeline.dossiers) == set(whole.dossiers)
    assert all(pipeline.state(d) == whole.state(d) for d in whole.dossiers)
