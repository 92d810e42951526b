"""Derive the packaged procedure catalogue from ``shared/data/procedures.csv``.

Usage: python scripts/make_catalog.py [procedures.csv] [ledger/domain/catalogdata/procedures.json.gz]

The output is deterministic (same CSV, same bytes): gzip with mtime 0, sorted
keys, no set or dict-order randomness. What is derived and why is described in
``ledger/domain/catalogdata/README.md``; in short:

* time limits with unit ``unknown`` (or no value) get a plausible default,
  marked in ``assumed``;
* ``online_level`` ``unknown`` becomes ``partial`` when the procedure has an
  online channel (marked), ``none`` otherwise;
* required documents get stable codes ``<code>.D01``, ``.D02`` ... in list order;
* some procedures get an older, superseded version (valid until a date, with a
  since-abolished document and a longer allowance) and a few get a newer
  version that comes into force later, both chosen by a hash of the code.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import statistics
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "procedures.csv"
DEFAULT_OUT = ROOT / "ledger" / "domain" / "catalogdata" / "procedures.json.gz"

FIRST_VALID_FROM = date(2018, 6, 21)  # ND 61/2018 in force: every procedure is published from then
DEFAULT_WORKING_DAYS = 7
KNOWN_UNITS = ("working_days", "calendar_days", "working_hours", "months", "same_day")

# Documents that older versions required and reforms abolished (e.g. the household
# registration book, abolished from 2023): the superseded versions list one of them.
RETIRED_DOCUMENTS = (
    "Bản sao Sổ hộ khẩu",
    "Giấy xác nhận tình trạng cư trú do Công an cấp xã cấp",
    "Bản sao có chứng thực Chứng minh nhân dân",
    "Giấy xác nhận của Ủy ban nhân dân cấp xã nơi cư trú",
    "Bản sao có chứng thực Giấy khai sinh",
    "Sơ yếu lý lịch có xác nhận của địa phương",
)

# Documents officials demand although no procedure lists them (domain brief §1: "papers
# demanded beyond the published list"); the simulator uses them for unlisted demands.
EXTRA_DOCUMENTS = (
    "Giấy xác nhận của trưởng thôn, tổ dân phố",
    "Bản sao công chứng Căn cước công dân (thêm bản)",
    "Giấy xác nhận không nợ thuế",
    "Sổ hộ khẩu (bản gốc)",
    "Giấy cam kết có xác nhận của Ủy ban nhân dân cấp xã",
    "Ảnh chụp hiện trạng có xác nhận của địa phương",
    "Văn bản ý kiến của phòng chuyên môn",
    "Giấy khám sức khỏe",
)


def _h(code: str, salt: str) -> int:
    """A stable pseudo-random integer for a procedure code (no seed: the catalog is fixed)."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{code}".encode()).digest()[:8], "big")


def _num(text: str) -> float | int | None:
    if not text.strip():
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def _documents(text: str) -> list[str]:
    out: list[str] = []
    for part in text.split(" || "):
        name = part.strip().lstrip(";").strip()
        if name and name not in out:
            out.append(name)
    return out


def _field_medians(rows: list[dict[str, str]]) -> dict[str, float]:
    """Median working-day limit per field: the default for a field's unknown limits."""
    by_field: dict[str, list[float]] = {}
    for row in rows:
        value = _num(row["time_limit_value"])
        if row["time_limit_unit"] == "working_days" and value:
            by_field.setdefault(row["field"], []).append(float(value))
    return {f: statistics.median(v) for f, v in sorted(by_field.items()) if len(v) >= 3}


def _allowance(row: dict[str, str], medians: dict[str, float]) -> tuple[dict, bool]:
    """(allowance {value, unit}, assumed). Unknown units and bare placeholders get a default."""
    value, unit = _num(row["time_limit_value"]), row["time_limit_unit"]
    if unit in KNOWN_UNITS and value is not None and (value > 0 or unit == "same_day"):
        return {"value": value, "unit": unit}, False
    if unit == "unknown" and value is not None and value > 1:
        # a number with no unit: most such limits are working days
        return {"value": value, "unit": "working_days"}, True
    default = medians.get(row["field"], DEFAULT_WORKING_DAYS)
    return {"value": int(round(default)), "unit": "working_days"}, True


def _bumped(allowance: dict) -> dict:
    """The longer limit an older version had (reforms shortened most limits)."""
    value, unit = allowance["value"], allowance["unit"]
    if unit == "same_day":
        return {"value": 1, "unit": "working_days"}
    step = 1 if unit in ("months", "working_hours") else max(1, round(value * 0.3))
    return {"value": value + step, "unit": unit}


def _shortened(allowance: dict) -> dict:
    """The shorter limit of a version coming into force later."""
    value, unit = allowance["value"], allowance["unit"]
    if unit == "same_day" or value <= 1:
        return dict(allowance)
    return {"value": value - max(1, round(value * 0.2)), "unit": unit}


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _versions(code: str, allowance: dict, docs: list[str]) -> tuple[list[dict], list[str]]:
    """The dated versions of one procedure, and the retired document names it uses."""
    current = [f"D{i:02d}" for i in range(1, len(docs) + 1)]
    pick = _h(code, "history") % 100
    if pick < 30:  # an older version, superseded before 2025-07
        retired = RETIRED_DOCUMENTS[_h(code, "retired") % len(RETIRED_DOCUMENTS)]
        until = date(2023, 1, 1) + timedelta(days=_h(code, "until") % 911)  # .. 2025-06-30
        old = {
            "version": "1",
            "valid_from": _iso(FIRST_VALID_FROM),
            "valid_to": _iso(until),
            "allowance": _bumped(allowance),
            "documents": [*current, "R01"],
        }
        new = {
            "version": "2",
            "valid_from": _iso(until + timedelta(days=1)),
            "valid_to": None,
            "allowance": allowance,
            "documents": current,
        }
        return [old, new], [retired]
    if pick < 34:  # a newer version comes into force later (2025-09-15 .. 2026-06-30)
        switch = date(2025, 9, 15) + timedelta(days=_h(code, "switch") % 289)
        now = {
            "version": "1",
            "valid_from": _iso(FIRST_VALID_FROM),
            "valid_to": _iso(switch - timedelta(days=1)),
            "allowance": allowance,
            "documents": current,
        }
        later = {
            "version": "2",
            "valid_from": _iso(switch),
            "valid_to": None,
            "allowance": _shortened(allowance),
            "documents": current[:-1] if len(current) > 1 else current,
        }
        return [now, later], []
    only = {
        "version": "1",
        "valid_from": _iso(FIRST_VALID_FROM),
        "valid_to": None,
        "allowance": allowance,
        "documents": current,
    }
    return [only], []


def build(rows: list[dict[str, str]]) -> dict:
    medians = _field_medians(rows)
    procedures = []
    for row in sorted(rows, key=lambda r: r["procedure_code"]):
        code = row["procedure_code"]
        assumed: list[str] = []
        allowance, guessed = _allowance(row, medians)
        if guessed:
            assumed.append("allowance")
        channels = [c for c in row["channels"].split("|") if c]
        if not channels:
            channels = ["direct"]
            assumed.append("channels")
        online = row["online_level"]
        if "online" not in channels:
            online = "none"
        elif online not in ("partial", "full"):
            online = "partial"
            assumed.append("online_level")
        docs = _documents(row["required_documents"])
        if not docs:
            docs = ["Đơn đề nghị (theo mẫu)"]
            assumed.append("documents")
        versions, retired = _versions(code, allowance, docs)
        procedures.append(
            {
                "code": code,
                "name": row["name"].strip(),
                "level": [lv for lv in row["level"].split("|") if lv] or ["other"],
                "field": row["field"].strip() or "Khác",
                "agency": row["agency"].strip(),
                "channels": channels,
                "online_level": online,
                "documents": docs,
                "retired": retired,
                "assumed": assumed,
                "versions": versions,
            }
        )
    return {
        "format": 1,
        "source": "shared/data/procedures.csv (chatbot-tthc/chatbot_tthc@53229487, dichvucong.gov.vn)",
        "extra_documents": list(EXTRA_DOCUMENTS),
        "procedures": procedures,
    }


def write(catalog: dict, out: Path) -> None:
    raw = json.dumps(catalog, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw.encode("utf-8"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else DEFAULT_CSV
    out = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    with src.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    catalog = build(rows)
    write(catalog, out)
    n = len(catalog["procedures"])
    assumed = sum("allowance" in p["assumed"] for p in catalog["procedures"])
    versions = sum(len(p["versions"]) for p in catalog["procedures"])
    print(
        f"{out}: {n} procedures, {versions} versions, {assumed} with an assumed allowance, "
        f"{out.stat().st_size} bytes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
