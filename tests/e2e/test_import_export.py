"""dossier import / dossier export end to end: small messy logs written here, round trips."""

from __future__ import annotations

import csv
import gzip
import json
import random
import sys
import types
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from cli.main import main
from interchange.export import ledger_mapping
from ledger.bootstrap import open_ledger
from ledger.ingest import ingest_lines
from ledger.settings import Settings
from projections.state import fold, view
from simulator import simulate
from simulator.factories import dossier_life, envelope

RULES = """
extends: packaged
rule_sets:
  - id: CITY-2011/v1
    legal_basis: "test city, 2010-2012"
    effective_from: 2010-01-01
    effective_to: 2012-12-31
    timezone: Europe/Paris
    holidays: FR
    granularity: minutes
"""

MAPPING = """
[source]
format = "{fmt}"
timezone = "Europe/Paris"
{csv}

[dossier]
id = {{ attr = "{case}concept:name" }}
received_at = {{ attr = "{case}start" }}
appointment_at = {{ attr = "{case}due" }}
resolved_at = {{ attr = "{case}end" }}
decision = {{ value = "approved" }}
procedure_code = {{ value = "PERMIT-A" }}
procedure_version = {{ value = "1" }}
agency = {{ value = "city-permits" }}
channel = {{ attr = "{case}via", map = {{ Web = "online", Counter = "direct", Mail = "postal" }}, default = "direct" }}
processing_time = {{ value = 30, unit = "calendar_days" }}
{rule_set}

[event]
at = {{ attr = "time:timestamp" }}
actor = {{ attr = "org:resource", default = "unknown" }}
step = {{ attr = "concept:name" }}

[[event.types]]
activity = "Send supplement request"
type = "SupplementRequested"

[[event.types]]
activity = "Supplement received"
type = "SupplementReceived"
"""


def mapping(tmp: Path, fmt: str, rule_set: bool = True) -> Path:
    path = tmp / f"{fmt}.toml"
    path.write_text(
        MAPPING.format(
            fmt=fmt,
            case="case:" if fmt == "csv" else "",
            csv='case = "case:concept:name"' if fmt == "csv" else "",
            rule_set='rule_set = { value = "CITY-2011/v1" }' if rule_set else "",
        ),
        encoding="utf-8",
    )
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def verdicts(data_dir: Path, now: str, rules_path: Path | None = None) -> dict[str, str]:
    settings = Settings.from_env(data_dir, rules_path=str(rules_path) if rules_path else None)
    ledger = open_ledger(settings)
    out = {}
    ids = sorted({r.dossier_id for r in ledger.iter_all()})
    for did in ids:
        out[did] = view(fold(ledger.events_of(did)), ledger.rules, datetime.fromisoformat(now))[
            "on_time"
        ]
    return out


# --- XES ---------------------------------------------------------------------------

XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="event"><string key="concept:name" value="__INVALID__"/></global>
  <string key="concept:name" value="city permits 2011"/>
  <trace>
    <string key="concept:name" value="C-EARLY"/>
    <date key="start" value="2011-10-11T09:00:00.000+02:00"/>
    <date key="end" value="2011-10-20T16:00:00.000+02:00"/>
    <string key="via" value="Web"/>
    <event>
      <string key="concept:name" value="Sign"/>
      <date key="time:timestamp" value="2011-10-19T10:00:00.000+02:00"/>
      <string key="org:resource" value="bob"/>
    </event>
    <event>
      <string key="concept:name" value="Check"/>
      <date key="time:timestamp" value="2011-10-12T10:00:00"/>
    </event>
    <event>
      <string key="concept:name" value="Check"/>
      <date key="time:timestamp" value="2011-10-12T10:00:00"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="C-LATE"/>
    <date key="start" value="2011-10-03T09:00:00+02:00"/>
    <date key="end" value="2011-12-01T11:00:00+01:00"/>
    <string key="via" value="Counter"/>
    <event>
      <string key="concept:name" value="Send supplement request"/>
      <date key="time:timestamp" value="2011-10-05T10:00:00+02:00"/>
      <string key="org:resource" value="anna"/>
      <list key="documents"><values><string key="doc" value="plan"/></values></list>
    </event>
    <event>
      <string key="concept:name" value="Supplement received"/>
      <date key="time:timestamp" value="2011-10-06T10:00:00+02:00"/>
      <string key="org:resource" value="anna"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="C-BACKWARDS"/>
    <date key="start" value="2011-10-11T09:00:00+02:00"/>
    <date key="end" value="2011-10-01T09:00:00+02:00"/>
  </trace>
  <trace>
    <string key="concept:name" value="C-OPEN"/>
    <date key="start" value="2012-06-01T09:00:00+02:00"/>
    <string key="via" value="Mail"/>
    <event>
      <string key="concept:name" value="Check"/>
      <date key="time:timestamp" value="2012-06-02T09:00:00+02:00"/>
      <string key="org:resource" value="carl"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="C-BADTIME"/>
    <date key="start" value="2011-10-11T09:00:00+02:00"/>
    <event>
      <string key="concept:name" value="Check"/>
      <date key="time:timestamp" value="someday"/>
    </event>
  </trace>
</log>
"""


@pytest.fixture
def city(tmp_path: Path) -> dict[str, Any]:
    rules = tmp_path / "city.yaml"
    rules.write_text(RULES, encoding="utf-8")
    return {"DOSSIER_RULES": str(rules), "rules": rules}


def test_import_a_messy_xes_log(tmp_path: Path, city: dict[str, Any]) -> None:
    log = tmp_path / "city.xes.gz"
    log.write_bytes(gzip.compress(XES.encode()))
    env = {"DOSSIER_RULES": city["DOSSIER_RULES"]}
    data = str(tmp_path / "d")
    first = run(
        "import", str(log), "--mapping", str(mapping(tmp_path, "xes")), "--data-dir", data, env=env
    )
    assert first.exit_code == 1, first.output
    out = first.output
    assert (
        f"{log}: trace 3: case C-BACKWARDS: the case ends (resolved_at 2011-10-01T09:00:00+02:00) "
        "before it starts (received_at 2011-10-11T09:00:00+02:00)"
    ) in out
    assert f"{log}: trace 5: case C-BADTIME: event 1: [event].at: not a timestamp: 'someday'" in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(
        "5 cases, 3 imported, 2 rejected; 7 events read, 1 duplicate rows dropped"
    )
    rejects = [
        json.loads(line) for line in Path(str(log) + ".rejects.jsonl").read_text().splitlines()
    ]
    assert [(r["case"], r["trace"]) for r in rejects] == [("C-BACKWARDS", 3), ("C-BADTIME", 5)]

    ledger = open_ledger(Settings.from_env(data, rules_path=city["DOSSIER_RULES"]))
    early = [r.envelope for r in ledger.events_of("C-EARLY")]
    assert [e["type"] for e in early] == [
        "DossierReceived",
        "StepCompleted",
        "StepCompleted",
        "ResultIssued",
    ]
    assert [e["data"].get("step") for e in early[1:3]] == ["Check", "Sign"]  # put in time order
    assert early[1]["occurred_at"] == "2011-10-12T10:00:00+02:00"  # naive: the mapping's zone
    assert early[1]["actor"]["id"] == "unknown" and early[2]["actor"]["id"] == "bob"
    assert early[0]["data"]["rule_set"] == "CITY-2011/v1"
    assert early[0]["data"]["channel"] == "online"
    assert "sealed" in early[0]["data"]["applicant"]
    assert verdicts(Path(data), "2012-06-03T12:00:00+02:00", city["rules"]) == {
        "C-EARLY": "EARLY",
        "C-LATE": "LATE",  # 30 calendar days from the completed dossier (6 Oct): due 5 Nov
        "C-OPEN": "WITHIN_DEADLINE",
    }
    assert verdicts(Path(data), "2012-07-03T12:00:00+02:00", city["rules"])["C-OPEN"] == "OVERDUE"

    again = run(
        "import", str(log), "--mapping", str(mapping(tmp_path, "xes")), "--data-dir", data, env=env
    )
    assert "stored 0, 10 already present" in again.output
    assert ledger.status()["events"] == 10


CSV_LOG = """case:concept:name,case:start,case:end,case:via,concept:name,time:timestamp,org:resource
C-2,2011-10-11T09:00:00+02:00,,Web,Check,2011-10-12 10:00:00,anna
C-1,2011-10-03 09:00,2011-10-20 16:00,Counter,Sign,2011-10-19T10:00:00+02:00,bob
C-1,,,,Check,2011-10-12T10:00:00+02:00,
C-1,,,,Check,2011-10-12T10:00:00+02:00,
,2011-10-03 09:00,,,Check,2011-10-12T10:00:00+02:00,anna
C-3,2011-10-11 09:00,2011-10-01 09:00,,Check,2011-10-12T10:00:00+02:00,anna
C-2,,,,Sign,2011-10-14T10:00:00+02:00,anna,extra
C-2,,,,Supplement received,2011-10-14T11:00:00+02:00,anna
C-4,2009-10-11 09:00,,,Check,2009-10-12T10:00:00+02:00,anna
"""


def test_import_a_messy_csv_log_naming_lines(tmp_path: Path, city: dict[str, Any]) -> None:
    log = tmp_path / "city.csv"
    log.write_text(CSV_LOG, encoding="utf-8")
    env = {"DOSSIER_RULES": city["DOSSIER_RULES"]}
    data = str(tmp_path / "d")
    result = run(
        "import", str(log), "--mapping", str(mapping(tmp_path, "csv", rule_set=False)),
        "--data-dir", data, "--format", "json", env=env,
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert f"{log}:6: no case id in column 'case:concept:name'" in lines
    assert f"{log}:8: 8 fields, the header has 7" in lines
    assert any(
        line.startswith(f"{log}:7: case C-3: the case ends (resolved_at 2011-10-01T09:00:00+02:00)")
        for line in lines
    )
    assert (
        f"{log}:9: case C-2: dossier C-2: event "  # the ledger's reason, on the row at fault
        in "\n".join(lines)
    )
    assert "supplement_without_request" in result.output
    assert (
        f"{log}:10: case C-4: dossier C-4: no rule set in force on 2009-10-11; give data.rule_set "
        "or a rules file (DOSSIER_RULES) that covers it"
    ) in lines
    summary = json.loads(lines[-1])
    assert summary["cases"] == 4 and summary["imported"] == 1 and summary["rejected"] == 5
    assert summary["duplicate_rows"] == 1 and summary["stored"] == 4
    ledger = open_ledger(Settings.from_env(data, rules_path=city["DOSSIER_RULES"]))
    assert ledger.status()["dossiers"] == 1  # C-2 is refused whole: nothing of it is stored
    c1 = [r.envelope for r in ledger.events_of("C-1")]
    assert (
        c1[0]["occurred_at"] == "2011-10-03T09:00:00+02:00" and c1[0]["data"]["channel"] == "direct"
    )
    assert [e["data"].get("step") for e in c1[1:3]] == ["Check", "Sign"]
    assert c1[3]["type"] == "ResultIssued" and c1[3]["occurred_at"] == "2011-10-20T16:00:00+02:00"
    assert verdicts(Path(data), "2012-01-01T00:00:00+01:00", city["rules"]) == {"C-1": "EARLY"}
    again = run(
        "import", str(log), "--mapping", str(mapping(tmp_path, "csv", rule_set=False)),
        "--data-dir", data, "--format", "json", env=env,
    )  # fmt: skip
    assert json.loads(again.output.strip().splitlines()[-1])["stored"] == 0
    assert ledger.status()["events"] == 4

    dry = tmp_path / "dry"
    result = run(
        "import", str(log), "--mapping", str(mapping(tmp_path, "csv", rule_set=False)),
        "--data-dir", str(dry), "--dry-run", "--format", "json", env=env,
    )  # fmt: skip
    assert json.loads(result.output.strip().splitlines()[-1])["stored"] == 4
    assert (
        open_ledger(Settings.from_env(dry, rules_path=city["DOSSIER_RULES"])).status()["events"]
        == 0
    )


def test_a_case_that_collides_with_a_dossier_from_elsewhere_adds_nothing_to_it(
    tmp_path: Path, city: dict[str, Any]
) -> None:
    data = tmp_path / "d"
    ledger = open_ledger(Settings.from_env(data, rules_path=city["DOSSIER_RULES"]))
    life = dossier_life("C-1", random.Random(1))
    ledger.append_batch(life)
    log = tmp_path / "city.csv"
    log.write_text(
        CSV_LOG.splitlines()[0] + "\n" + CSV_LOG.splitlines()[2] + "\n", encoding="utf-8"
    )
    result = run(
        "import", str(log), "--mapping", str(mapping(tmp_path, "csv", rule_set=False)),
        "--data-dir", str(data), env={"DOSSIER_RULES": city["DOSSIER_RULES"]},
    )  # fmt: skip
    assert result.exit_code == 1 and "duplicate_receipt" in result.output
    assert len(ledger.events_of("C-1")) == len(life)


def test_unreadable_logs_and_mappings_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xes"
    bad.write_text(XES[:1500], encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "import",
            str(bad),
            "--mapping",
            str(mapping(tmp_path, "xes")),
            "--data-dir",
            str(tmp_path / "d"),
        ],
    )
    assert result.exit_code == 1 and "not well-formed XML" in result.output
    assert f"{bad}:" in result.output and "Traceback" not in result.output
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[source]\nformat = "xes"\n[dossier]\nid = { attr = "x" }\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["import", str(bad), "--mapping", str(wrong)])
    assert result.exit_code == 1 and "[dossier]: missing procedure_code" in result.output
    log = tmp_path / "nocase.csv"
    log.write_text("case,concept:name\n1,a\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "import",
            str(log),
            "--mapping",
            str(mapping(tmp_path, "csv")),
            "--data-dir",
            str(tmp_path / "d"),
        ],
    )
    assert result.exit_code == 1 and "no case column 'case:concept:name'" in result.output


# --- export and round trip -----------------------------------------------------------


def _source_ledger(tmp_path: Path) -> Path:
    data = tmp_path / "src"
    events = tmp_path / "sim.jsonl"
    with events.open("w", encoding="utf-8") as out:
        simulate(3, 11, out, None)
    ledger = open_ledger(Settings.from_env(data))
    with events.open("rb") as lines:
        assert not ingest_lines(ledger, lines).errors
    # a supplement round, an apology and a withdrawal, so every kind of clock is exported
    extra = dossier_life("D-extra-1", random.Random(9), steps=1)
    at = extra[2]["occurred_at"]
    rng = random.Random(3)
    later = datetime.fromisoformat(at)
    extra[3:3] = [
        envelope(rng, "D-extra-1", "SupplementRequested", later + timedelta(hours=1),
                 {"documents": ["ban-ve", "so-do"], "reason": "missing plan", "stage": "appraisal"}),
        envelope(rng, "D-extra-1", "SupplementReceived", later + timedelta(days=3),
                 {"documents": ["ban-ve", "so-do"]}),
        envelope(rng, "D-extra-1", "ApologyIssued", later + timedelta(days=4),
                 {"reason": "late", "new_appointment_at": (later + timedelta(days=20)).isoformat()}),
    ]  # fmt: skip
    for i, env in enumerate(extra[6:], start=6):
        env["occurred_at"] = (later + timedelta(days=5, hours=i)).isoformat()
        env["recorded_at"] = env["occurred_at"]
    withdrawn = dossier_life("D-extra-2", random.Random(10), steps=1)[:2]
    withdrawn.append(
        envelope(
            rng,
            "D-extra-2",
            "DossierWithdrawn",
            datetime.fromisoformat(withdrawn[1]["occurred_at"]) + timedelta(hours=1),
            {},
        )
    )
    result = ledger.append_batch(extra + withdrawn)
    assert not result.rejected, result.rejected
    return data


def _dossiers(data: Path) -> dict[str, list[tuple]]:
    ledger = open_ledger(Settings.from_env(data))
    out: dict[str, list[tuple]] = {}
    for rec in ledger.iter_all():
        env = rec.envelope
        fields = {k: v for k, v in env["data"].items() if k != "applicant"}
        out.setdefault(env["dossier_id"], []).append(
            (
                env["type"],
                datetime.fromisoformat(env["occurred_at"]),
                datetime.fromisoformat(env["recorded_at"]),
                tuple(sorted(env["actor"].items())),
                orjson.dumps(fields, option=orjson.OPT_SORT_KEYS),
            )
        )
    return {k: sorted(v, key=lambda t: (t[1], t[0])) for k, v in out.items()}


@pytest.mark.parametrize("fmt", ["xes", "csv"])
def test_export_then_import_gives_the_same_dossiers_and_verdicts(tmp_path: Path, fmt: str) -> None:
    src = _source_ledger(tmp_path)
    log = tmp_path / f"log.{fmt}.gz"
    result = run("export", f"--{fmt}", str(log), "--data-dir", str(src), "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["cases"] == open_ledger(Settings.from_env(src)).status()["dossiers"]
    text = gzip.decompress(log.read_bytes()).decode()
    assert "Nguyễn" not in text and "id_number" not in text and "sealed" not in text
    assert "ap-" in text  # the pseudonym, nothing else of the applicant

    m = tmp_path / f"{fmt}.toml"
    m.write_text(ledger_mapping(fmt), encoding="utf-8")
    dst = tmp_path / "dst"
    result = run("import", str(log), "--mapping", str(m), "--data-dir", str(dst))
    assert result.exit_code == 0, result.output
    assert _dossiers(dst) == _dossiers(src)
    now = summary["now"]
    assert verdicts(dst, now) == verdicts(src, now)
    assert len(set(verdicts(src, now).values())) >= 3  # finished and open dossiers alike
    again = run("import", str(log), "--mapping", str(m), "--data-dir", str(dst), "--format", "json")
    assert json.loads(again.output)["stored"] == 0


def test_exported_case_attributes_carry_the_projection_verdict(tmp_path: Path) -> None:
    src = _source_ledger(tmp_path)
    out = tmp_path / "log.csv"
    now = "2025-09-04T12:00:00+07:00"
    result = run("export", "--csv", str(out), "--now", now, "--data-dir", str(src))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    expected = verdicts(src, now)
    seen = {r["case:concept:name"]: r["case:on_time"] for r in rows}
    assert seen == expected
    first = rows[0]
    for column in (
        "case:concept:name",
        "concept:name",
        "time:timestamp",
        "org:resource",
        "org:role",
    ):
        assert first[column]
    assert {r["dossier:type"] for r in rows if r["concept:name"] == "DossierReceived"} == {
        "DossierReceived"
    }

    day = min(r["case:received"][:10] for r in rows)
    narrow = tmp_path / "day.xes"
    result = run(
        "export", "--xes", str(narrow), "--from", day, "--to", day, "--data-dir", str(src),
        "--format", "json",
    )  # fmt: skip
    n = json.loads(result.output)["cases"]
    assert 0 < n == len({r["case:concept:name"] for r in rows if r["case:received"][:10] == day})
    assert narrow.read_text(encoding="utf-8").count("<trace>") == n


def test_export_parquet_calls_the_parquet_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple] = []
    fake = types.ModuleType("interchange.parquet")
    fake.export_parquet = lambda settings, out_dir: (
        calls.append((settings, out_dir)) or {"tables": 3}
    )  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "interchange.parquet", fake)
    result = run(
        "export", "--parquet", str(tmp_path / "pq"), "--data-dir", str(tmp_path), "--format", "json"
    )
    assert result.exit_code == 0 and json.loads(result.output) == {"parquet": {"tables": 3}}
    assert calls[0][0].data_dir == tmp_path and calls[0][1] == tmp_path / "pq"


def test_export_needs_an_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--xes FILE" in result.output


@pytest.mark.parametrize("fmt", ["xes", "csv"])
def test_reading_in_a_second_process_gives_the_same_import(
    tmp_path: Path, city: dict[str, Any], fmt: str
) -> None:
    from interchange.importer import import_log
    from interchange.mapping import load_mapping

    log = tmp_path / f"city.{fmt}"
    log.write_text(XES if fmt == "xes" else CSV_LOG, encoding="utf-8")
    m = load_mapping(mapping(tmp_path, fmt, rule_set=fmt == "xes"))
    outcomes = []
    for parallel in (False, True):
        data = tmp_path / f"d-{parallel}"
        ledger = open_ledger(Settings.from_env(data, rules_path=city["DOSSIER_RULES"]))
        report = import_log(ledger, log, m, parallel=parallel, batch_size=3)
        stored = [(r.position, r.envelope["event_id"]) for r in ledger.iter_all()]
        outcomes.append((report.as_dict(), [str(e) for e in report.errors], stored))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0]["stored"] > 0 and outcomes[0][1]


def test_a_broken_log_read_in_a_second_process_keeps_the_cases_before_the_break(
    tmp_path: Path, city: dict[str, Any]
) -> None:
    from interchange.cases import LogError
    from interchange.importer import import_log
    from interchange.mapping import load_mapping

    log = tmp_path / "broken.xes"
    cut = XES.index("<trace>", XES.index("C-LATE"))  # after two whole traces
    log.write_text(XES[:cut] + "<trace><oops></trace>", encoding="utf-8")
    ledger = open_ledger(Settings.from_env(tmp_path / "d", rules_path=city["DOSSIER_RULES"]))
    with pytest.raises(LogError, match="not well-formed XML"):
        import_log(ledger, log, load_mapping(mapping(tmp_path, "xes")), parallel=True)
    assert ledger.status()["dossiers"] == 2


def test_export_parquet_without_an_analytics_database_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("interchange.parquet")
    result = CliRunner().invoke(
        main, ["export", "--parquet", str(tmp_path / "pq"), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1 and result.output.startswith("Error: --parquet: ")
    assert "Traceback" not in result.output
