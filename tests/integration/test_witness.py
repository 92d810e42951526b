"""Signed digests and the two witnesses name what a consistent rewrite changed.

A *consistent* rewrite edits a stored event and recomputes its hash and every
later hash of its dossier's chain: ``verify --all`` passes, so only a witness
the operator does not control can catch it: the relay's copy on
``dossier.events``, or a series of signed digests.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger import topics
from ledger.audit import issue_signed_digest
from ledger.bootstrap import open_ledger
from ledger.domain.hashchain import event_hash
from ledger.kafka import ensure_topics, make_producer
from ledger.relay import DigestIssuer, DigestSchedule, Relay
from ledger.settings import Settings
from ledger.signing import init_keys, verify_signature
from ledger.witness import compare_with_topic
from simulator.factories import event_stream
from system.harness.topic import read_topic

pytestmark = pytest.mark.integration


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def rewrite_consistently(settings: Settings, position: int, comment: str = "rewritten") -> str:
    """Change one stored event's content and re-seal its dossier's chain from there.

    Returns the altered event's id. The event index is left untouched (its
    event ids, versions and types do not change).
    """
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        did, version = conn.execute(
            "SELECT originator_id, originator_version FROM stored_events WHERE rowid = ?",
            (position,),
        ).fetchone()
        rows = conn.execute(
            "SELECT rowid, state FROM stored_events WHERE originator_id = ? "
            "AND originator_version >= ? ORDER BY originator_version",
            (did, version),
        ).fetchall()
        prev = None
        for i, (rowid, state) in enumerate(rows):
            obj = orjson.loads(state)
            env = obj["envelope"]
            if i == 0:
                env["data"] = {**env["data"], "note": comment}
                eid = env["event_id"]
            else:
                env["prev_hash"] = prev
            env.pop("hash")
            env["hash"] = event_hash(env)
            prev = env["hash"]
            conn.execute(
                "UPDATE stored_events SET state = ? WHERE rowid = ?", (orjson.dumps(obj), rowid)
            )
        return eid
    finally:
        conn.close()


@pytest.fixture
def signed(tmp_path: Path):
    """A ledger of a few dossiers and a signing key; returns (settings, public key)."""
    settings = Settings.from_env(tmp_path / "data")
    ledger = open_ledger(settings)
    ledger.append_batch(event_stream(12, seed=31))
    out = run("keys", "init", "--data-dir", str(settings.data_dir))
    assert out.exit_code == 0, out.output
    public = orjson.loads(out.stdout)["public_key"]
    return settings, public


def test_consistent_rewrite_passes_verify_all(signed) -> None:
    """The gap the witnesses close."""
    settings, _ = signed
    rewrite_consistently(settings, 7)
    assert run("verify", "--all", "--data-dir", str(settings.data_dir)).exit_code == 0


def test_keys_init_refuses_to_overwrite_a_key(signed) -> None:
    settings, public = signed
    again = run("keys", "init", "--data-dir", str(settings.data_dir))
    assert again.exit_code == 1 and "exists" in again.output
    assert (settings.data_dir / "signing.pub").read_text().strip() == public


def test_a_signed_digest_verifies_and_a_forged_one_is_refused(signed, tmp_path: Path) -> None:
    settings, public = signed
    data = str(settings.data_dir)
    path = tmp_path / "digest.json"
    assert run("digest", "--sign", "--out", str(path), "--data-dir", data).exit_code == 0
    digest = orjson.loads(path.read_bytes())
    verify_signature(digest, public)

    ok = run("verify", "--digest", str(path), "--public-key", public, "--data-dir", data)
    assert ok.exit_code == 0, ok.output

    rewrite_consistently(settings, 5)  # the operator rewrites, then reissues the digest...
    forged = dict(digest)
    forged["root"] = orjson.loads(run("digest", "--data-dir", data).stdout)["root"]
    path.write_bytes(orjson.dumps(forged))  # ...keeping the old signature
    refused = run("verify", "--digest", str(path), "--public-key", public, "--data-dir", data)
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output and "does not verify" in refused.output


def test_a_digest_signed_by_another_key_or_unsigned_is_refused(signed, tmp_path: Path) -> None:
    settings, public = signed
    data = str(settings.data_dir)
    other = tmp_path / "other.key"
    init_keys(other)
    theirs = issue_signed_digest(open_ledger(settings), tmp_path / "d", other)
    unsigned = tmp_path / "plain.json"
    assert run("digest", "--out", str(unsigned), "--data-dir", data).exit_code == 0

    for path in (theirs, unsigned):
        result = run("verify", "--digest", str(path), "--public-key", public, "--data-dir", data)
        assert result.exit_code == 1 and "REFUSED" in result.output, result.output
    by_file = run(
        "verify",
        "--digest",
        str(theirs),
        "--public-key",
        str(other.with_suffix(".pub")),
        "--data-dir",
        data,
    )
    assert by_file.exit_code == 0, by_file.output  # the key may be given as its file


def test_a_digest_series_pins_the_tampered_range(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "data")
    ledger = open_ledger(settings)
    key = tmp_path / "k" / "signing.key"
    public = init_keys(key)
    events = event_stream(20, seed=32)
    folder = tmp_path / "digests"
    cuts = [len(events) // 4, len(events) // 2, 3 * len(events) // 4, len(events)]
    done = 0
    positions = []
    for cut in cuts:
        ledger.append_batch(events[done:cut])
        done = cut
        positions.append(ledger.max_position())
        issue_signed_digest(ledger, folder, key)
    target = positions[1] + 3  # inside (p2, p3]
    eid = rewrite_consistently(settings, target)

    result = run(
        "verify",
        "--digests",
        str(folder),
        "--public-key",
        public,
        "--data-dir",
        str(settings.data_dir),
        "--format",
        "json",
    )

    assert result.exit_code == 1
    assert f"digest-{positions[2]:012d}-" in result.stderr  # the first that no longer holds
    assert f"changed at a position in ({positions[1]}, {positions[2]}]" in result.stderr
    report = orjson.loads(result.stdout)
    assert len(report["problems"]) >= 1
    assert eid  # the event itself is named by the relay's witness (next test)


def test_a_forged_digest_in_a_series_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "data")
    ledger = open_ledger(settings)
    key = tmp_path / "signing.key"
    public = init_keys(key)
    ledger.append_batch(event_stream(5, seed=33))
    path = issue_signed_digest(ledger, tmp_path / "digests", key)
    digest = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps(digest | {"events": digest["events"] - 1}))

    result = run(
        "verify",
        "--digests",
        str(tmp_path / "digests"),
        "--public-key",
        public,
        "--data-dir",
        str(settings.data_dir),
    )
    assert result.exit_code == 1 and "REFUSED" in result.output and path.name in result.output


def _relayed(tmp_path: Path, bootstrap: str, dossiers: int = 30) -> Settings:
    settings = Settings.from_env(tmp_path / "data")
    open_ledger(settings).append_batch(event_stream(dossiers, seed=34))
    assert run("kafka", "init", "--bootstrap", bootstrap).exit_code == 0
    relay = run("relay", "--once", "--bootstrap", bootstrap, "--data-dir", str(settings.data_dir))
    assert relay.exit_code == 0, relay.output
    return settings


def test_against_kafka_names_a_consistently_rewritten_event(fresh_kafka: str, tmp_path) -> None:
    settings = _relayed(tmp_path, fresh_kafka)
    data = str(settings.data_dir)
    clean = run("verify", "--against-kafka", "--bootstrap", fresh_kafka, "--data-dir", data)
    assert clean.exit_code == 0, clean.output

    eid = rewrite_consistently(settings, 11)
    assert run("verify", "--all", "--data-dir", data).exit_code == 0  # chains still agree
    result = run("verify", "--against-kafka", "--bootstrap", fresh_kafka, "--data-dir", data)

    assert result.exit_code == 1
    altered = [line for line in result.stdout.splitlines() if line.startswith("ALTERED")]
    assert any(eid in line and "(position 11)" in line for line in altered), result.output
    assert "differs from the copy on dossier.events" in result.stdout


def test_against_kafka_finds_every_rewrite(fresh_kafka: str, tmp_path: Path) -> None:
    """Each of many random rewrites (and the chain re-sealed after it) is named."""
    settings = _relayed(tmp_path, fresh_kafka, dossiers=20)
    ledger = open_ledger(settings)
    total = ledger.max_position()
    rng = random.Random(35)
    missed = []
    for n, position in enumerate(rng.sample(range(1, total + 1), 12)):
        eid = rewrite_consistently(settings, position, comment=f"edit {n}")
        named = {p.event_id for p in compare_with_topic(ledger, fresh_kafka, idle=1.0).problems}
        if eid not in named:
            missed.append(position)
    assert missed == []


def test_against_kafka_names_a_deleted_event(fresh_kafka: str, tmp_path: Path) -> None:
    settings = _relayed(tmp_path, fresh_kafka, dossiers=10)
    conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    conn.execute("DELETE FROM stored_events WHERE rowid = 4")
    conn.close()

    problems = compare_with_topic(open_ledger(settings), fresh_kafka, idle=1.0).problems

    assert [(p.kind, p.position) for p in problems] == [("deleted", 4)]


def test_following_relay_issues_signed_digests_to_folder_and_topic(
    fresh_kafka: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(tmp_path / "data")
    ledger = open_ledger(settings)
    events = event_stream(20, seed=36)
    ledger.append_batch(events[:60])
    public = init_keys(tmp_path / "signing.key")
    ensure_topics(fresh_kafka)
    producer = make_producer(fresh_kafka, linger_ms=5)
    issuer = DigestIssuer(
        ledger, producer, tmp_path / "digests", tmp_path / "signing.key", DigestSchedule(0.0)
    )
    relay = Relay(ledger, producer, page=25, on_acked=issuer)
    stop = threading.Event()
    worker = threading.Thread(target=relay.follow, args=(0.05, stop))
    worker.start()
    try:
        time.sleep(0.3)
        ledger.append_batch(events[60:])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
            relay.acknowledged() < ledger.max_position()
            or not issuer.issued
            or orjson.loads(issuer.issued[-1].read_bytes())["position"] < ledger.max_position()
        ):
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
        producer.close()

    files = sorted((tmp_path / "digests").glob("*.json"))
    assert len(files) >= 2
    for f in files:
        verify_signature(orjson.loads(f.read_bytes()), public)
    on_topic = read_topic(fresh_kafka, topics.DIGESTS, len(files), deadline=20)
    assert [r.value["root"] for r in on_topic] == [
        orjson.loads(f.read_bytes())["root"] for f in issuer.issued
    ]
    result = run(
        "verify",
        "--digests",
        str(tmp_path / "digests"),
        "--public-key",
        public,
        "--data-dir",
        str(settings.data_dir),
    )
    assert result.exit_code == 0, result.output


def test_digest_schedule_hourly_and_at_each_days_close() -> None:
    now = [1_767_200_000.0]  # 2025-12-31 16:53:20 UTC = 23:53:20 in Vietnam
    schedule = DigestSchedule(3600.0, clock=lambda: now[0])
    assert schedule.due(10)
    schedule.issued(10)
    now[0] += 60
    assert not schedule.due(20)  # same day, under an hour
    now[0] += 600  # past midnight in Vietnam: the day closed
    assert schedule.due(20)
    schedule.issued(20)
    now[0] += 3599
    assert not schedule.due(30)
    now[0] += 1
    assert schedule.due(30)
    schedule.issued(30)
    now[0] += 7200
    assert not schedule.due(30)  # nothing new: never twice for one position


def test_dossier_relay_follow_signs_digests_and_stops_on_sigterm(
    fresh_kafka: str, tmp_path: Path
) -> None:
    import signal
    import subprocess

    from system.harness.crash import dossier_executable

    settings = Settings.from_env(tmp_path / "data")
    open_ledger(settings).append_batch(event_stream(15, seed=37))
    data = str(settings.data_dir)
    public = orjson.loads(run("keys", "init", "--data-dir", data).stdout)["public_key"]
    assert run("kafka", "init", "--bootstrap", fresh_kafka).exit_code == 0
    cmd = [dossier_executable(), "relay", "--bootstrap", fresh_kafka, "--data-dir", data]
    proc = subprocess.Popen(
        [*cmd, "--poll-interval", "0.05", "--digest-every", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(
            (settings.data_dir / "digests").glob("*.json")
        ):
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)  # this relay only, by its own handle
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    (path,) = (settings.data_dir / "digests").glob("*.json")  # hourly: just the first
    digest = orjson.loads(path.read_bytes())
    verify_signature(digest, public)
    assert digest["position"] == open_ledger(settings).max_position()
    assert orjson.loads(out.strip().splitlines()[-1])["client"] == "confluent"
    assert read_topic(fresh_kafka, topics.DIGESTS, 1, deadline=10)[0].value == digest


def test_against_kafka_reports_a_record_that_is_not_a_relayed_event(
    fresh_kafka: str, tmp_path: Path
) -> None:
    settings = _relayed(tmp_path, fresh_kafka, dossiers=5)
    producer = make_producer(fresh_kafka)
    producer.send(topics.EVENTS, key=b"x", value=b"{not json")
    producer.flush()
    producer.close()

    problems = compare_with_topic(open_ledger(settings), fresh_kafka, idle=1.0).problems

    assert [p.kind for p in problems] == ["unreadable"]
    assert "is not a relayed event" in problems[0].detail


def test_against_kafka_refuses_an_emptied_or_foreign_witness(
    fresh_kafka: str, tmp_path: Path
) -> None:
    """The relay acknowledged everything on one broker; another broker holds nothing."""
    from system.harness.tansu import running_tansu

    settings = _relayed(tmp_path, fresh_kafka, dossiers=5)
    with running_tansu() as other:
        ensure_topics(other, names=[topics.EVENTS])  # empty
        problems = compare_with_topic(open_ledger(settings), other, idle=1.0).problems

    assert len(problems) == 1 and "holds positions only up to 0" in problems[0].detail
