"""JSON Schema of the event envelope, generated from ``ledger.domain.events.EVENT_TYPES``.

``python -m ledger.envelope_schema`` (re)writes the committed files under
``ledger/schema/``; ``--check`` exits 1 if they differ from what the code
would generate. Files (JSON Schema draft 2020-12):

* ``envelope.v2.json``: an input envelope, as ``dossier ingest`` and
  ``DossierLedger.append`` accept it (``ledger.domain.events.validate`` agrees with it,
  apart from calendar checks such as 30 February, which only ``validate`` makes);
* ``stored-envelope.v2.json``: an envelope as the ledger stores and publishes
  it (ledger fields set, applicant sealed), what relay and stream consumers read;
* ``<Type>.data.v2.json``: one type's ``data`` object.

Pure: standard library only (no I/O unless run as a script).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ledger.domain.events import (
    APPLICANT_FIELDS,
    EVENT_TYPES,
    INSTANT_PATTERN,
    LEDGER_FIELDS,
    MAX_SAFE_INTEGER,
    PSEUDONYM_PATTERN,
    ROLES,
    SCHEMA_VERSION,
    SEALED_PATTERN,
    TIME_UNITS,
    UUID_PATTERN,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://dossier-ledger.example/schema/"
SCHEMA_DIR = Path(__file__).with_name("schema")

_NON_EMPTY = {"type": "string", "minLength": 1}
_INSTANT = {"type": "string", "pattern": INSTANT_PATTERN}
_HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$", "minLength": 64, "maxLength": 64}


def _duration() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An allowance or budget; 'value' may be omitted for same_day.",
        "required": ["unit"],
        "additionalProperties": False,
        "properties": {
            "value": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_SAFE_INTEGER},
            "unit": {"enum": list(TIME_UNITS)},
        },
        "if": {"properties": {"unit": {"const": "same_day"}}},
        "else": {"required": ["value"], "properties": {"value": {"type": "number"}}},
    }


def _sealed_applicant() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Applicant data encrypted with the applicant's own key (AES-256-GCM).",
        "required": ["pseudonym", "sealed"],
        "additionalProperties": False,
        "properties": {
            "pseudonym": {
                "type": "string",
                "pattern": PSEUDONYM_PATTERN,
                "minLength": 27,
                "maxLength": 27,
            },
            "sealed": {"type": "string", "pattern": SEALED_PATTERN},
        },
    }


def _plain_applicant() -> dict[str, Any]:
    optional = {"anyOf": [_NON_EMPTY, {"type": "null"}]}
    return {
        "type": "object",
        "description": "Personal data in clear: the ledger seals it before storing.",
        "required": ["name", "id_number"],
        "additionalProperties": False,
        "properties": {
            key: (_NON_EMPTY if key in ("name", "id_number") else optional)
            for key in APPLICANT_FIELDS
        },
    }


def field_schema(kind: str, *, stored: bool = False) -> dict[str, Any]:
    """JSON Schema of one field kind of ``EVENT_TYPES``."""
    if kind.startswith("enum:"):
        return {"enum": kind[5:].split("|")}
    match kind:
        case "str":
            return dict(_NON_EMPTY)
        case "int":
            return {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER}
        case "number":
            return {"type": "number", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
        case "bool":
            return {"type": "boolean"}
        case "instant":
            return dict(_INSTANT)
        case "str_list":
            return {"type": "array", "items": dict(_NON_EMPTY)}
        case "duration":
            return _duration()
        case "applicant":
            if stored:
                return _sealed_applicant()
            return {"oneOf": [_plain_applicant(), _sealed_applicant()]}
        case _:
            raise ValueError(f"no JSON Schema for field kind {kind!r}")


def data_schema(etype: str, *, stored: bool = False) -> dict[str, Any]:
    """The ``data`` object of one event type; optional fields may be null."""
    spec = EVENT_TYPES[etype]
    properties: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        schema = field_schema(kind, stored=stored)
        properties[name] = schema if required else {"anyOf": [schema, {"type": "null"}]}
    out: dict[str, Any] = {
        "title": f"{etype} data",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
    required = [name for name, (_, req) in spec.items() if req]
    if required:
        out["required"] = required
    if stored and etype == "DossierReceived":
        out["required"] = [*required, "rule_set"]  # pinned by the ledger at receipt
    return out


def envelope_schema(*, stored: bool = False) -> dict[str, Any]:
    """The envelope with every type's data schema under ``$defs``."""
    name = "stored-envelope" if stored else "envelope"
    required = ["event_id", "dossier_id", "type", "occurred_at", "actor", "data", "schema_version"]
    properties: dict[str, Any] = {
        "event_id": {"type": "string", "pattern": UUID_PATTERN, "minLength": 36, "maxLength": 36},
        "dossier_id": dict(_NON_EMPTY),
        "type": {"enum": list(EVENT_TYPES)},
        "occurred_at": {**_INSTANT, "description": "Business time the act happened (claimed)."},
        "recorded_at": {
            "anyOf": [_INSTANT, {"type": "null"}],
            "description": "When the source system recorded it; set by the ledger if absent.",
        },
        "actor": {
            "type": "object",
            "required": ["id", "role", "agency"],
            "additionalProperties": False,
            "properties": {
                "id": dict(_NON_EMPTY),
                "role": {"enum": list(ROLES)},
                "agency": dict(_NON_EMPTY),
            },
        },
        "data": {"type": "object"},
        "schema_version": {"const": SCHEMA_VERSION},
    }
    if stored:
        required = [*required, "recorded_at", *LEDGER_FIELDS]
        properties["recorded_at"] = dict(_INSTANT)
        properties["appended_at"] = {
            **_INSTANT,
            "description": "When the ledger appended the event.",
        }
        properties["prev_hash"] = {**_HASH, "description": "hash of the dossier's previous event"}
        properties["hash"] = {**_HASH, "description": "SHA-256 of the canonical envelope"}
    return {
        "$schema": DRAFT,
        "$id": f"{BASE_ID}{name}.v{SCHEMA_VERSION}.json",
        "title": "dossier-ledger event envelope" + (" (as stored)" if stored else ""),
        "description": "Generated from ledger.domain.events.EVENT_TYPES by "
        "`python -m ledger.envelope_schema`; see docs/events.md.",
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
        "allOf": [
            {
                "if": {"properties": {"type": {"const": etype}}, "required": ["type"]},
                "then": {"properties": {"data": {"$ref": f"#/$defs/{etype}"}}},
            }
            for etype in EVENT_TYPES
        ],
        "$defs": {etype: data_schema(etype, stored=stored) for etype in EVENT_TYPES},
    }


def generate() -> dict[str, dict[str, Any]]:
    """Relative path -> schema, for every file under ``ledger/schema/``."""
    files = {
        f"envelope.v{SCHEMA_VERSION}.json": envelope_schema(),
        f"stored-envelope.v{SCHEMA_VERSION}.json": envelope_schema(stored=True),
    }
    for etype in EVENT_TYPES:
        files[f"{etype}.data.v{SCHEMA_VERSION}.json"] = {
            "$schema": DRAFT,
            "$id": f"{BASE_ID}{etype}.data.v{SCHEMA_VERSION}.json",
            **data_schema(etype),
        }
    return files


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def differences(directory: Path = SCHEMA_DIR) -> list[str]:
    """Files that are missing, stale or unexpected in ``directory``."""
    wanted = {path: render(schema) for path, schema in generate().items()}
    out = []
    for path, text in wanted.items():
        file = directory / path
        if not file.is_file():
            out.append(f"{path}: missing")
        elif file.read_text(encoding="utf-8") != text:
            out.append(f"{path}: differs from the generated schema")
    for file in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        rel = file.relative_to(directory).as_posix()
        if rel not in wanted:
            out.append(f"{rel}: not generated from EVENT_TYPES (remove it)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR)
    args = parser.parse_args(argv)
    if args.check:
        diff = differences(args.dir)
        for line in diff:
            print(f"{args.dir}/{line}", file=sys.stderr)
        return 1 if diff else 0
    for path, schema in generate().items():
        file = args.dir / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(render(schema), encoding="utf-8")
    for line in differences(args.dir):  # leftovers from removed types
        print(f"warning: {args.dir}/{line}", file=sys.stderr)
    print(f"wrote {len(generate())} schema files to {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
