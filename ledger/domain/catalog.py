"""The procedure catalogue: dated procedure versions, their documents and step plans.

The single source of truth for what a procedure required on a given day: stream
processors use it to flag ``unlisted_document_requested`` (a document not on
the version's list) and ``superseded_procedure`` (a version not valid on the
receipt date); the simulator uses it to build dossiers.

Built from the national procedure data (``shared/data/procedures.csv``) by
``scripts/make_catalog.py`` into ``ledger/domain/catalogdata/procedures.json.gz``
(see the README there). Loading is deterministic and cached; it does not depend
on any simulation seed. Standard library only.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from ledger.domain.durations import Duration

PACKAGED = "procedures.json.gz"
EXTRA_PREFIX = "0.000000"
"""Document codes ``0.000000.Xnn``: documents demanded although no procedure lists them."""

# Step plan (TT01 Art 8 internal procedures): share of the allowance per step.
PLAN = (("intake", "receiver", "desk", 0.05), ("appraisal", "appraiser", "agency", 0.65))
PLAN_END = (("approval", "approver", "agency", 0.20), ("return", "receiver", "desk", 0.10))
CONSULTATION_SHARE = 0.20
"""With liên thông, the consultation step takes this share out of appraisal."""


class CatalogError(KeyError):
    """An unknown procedure code or version."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a version's internal procedure: who performs it and its budget."""

    name: str
    role: str  # receiver | appraiser | approver | handler (consulted body)
    unit: str  # desk | agency | partner
    budget: Duration


@dataclass(frozen=True, slots=True)
class ProcedureVersion:
    """A procedure as it stood over [valid_from, valid_to].

    ``allowance`` is the legal time limit (never None in the packaged data: an
    unknown limit gets a default listed in ``assumed``). ``documents`` are
    document codes (``<code>.D01``...; superseded versions may list a retired
    ``<code>.R01``). Step budgets sum to the allowance, in its unit.
    """

    code: str
    version: str
    name: str
    level: tuple[str, ...]
    field: str
    agency: str
    allowance: Duration | None
    channels: tuple[str, ...]
    online_level: str
    documents: tuple[str, ...]
    valid_from: date
    valid_to: date | None
    steps: tuple[Step, ...]
    assumed: tuple[str, ...] = ()

    def covers(self, day: date) -> bool:
        """Whether this version is valid on ``day`` (both ends inclusive)."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    @property
    def consultation(self) -> bool:
        """Whether the internal procedure consults another body (liên thông)."""
        return any(s.unit == "partner" for s in self.steps)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise CatalogError(f"{self.code} v{self.version}: no step {name!r}")


def _needs_consultation(code: str, allowance: Duration) -> bool:
    """About one in six procedures with room for it consult another body (by a hash of the code)."""
    if allowance.unit == "working_days" and allowance.value < 5:
        return False
    if allowance.unit in ("working_hours", "same_day"):
        return False
    h = int.from_bytes(hashlib.sha256(f"consult:{code}".encode()).digest()[:4], "big")
    return h % 6 == 0


def step_plan(code: str, allowance: Duration) -> tuple[Step, ...]:
    """Budgets per step: shares of the allowance, rounded to 0.01, appraisal takes the rest."""
    unit = allowance.unit
    total = allowance.value
    consult = _needs_consultation(code, allowance)
    shares = [*PLAN, *PLAN_END]
    if consult:
        shares.insert(2, ("consultation", "handler", "partner", CONSULTATION_SHARE))
        shares[1] = ("appraisal", "appraiser", "agency", 0.65 - CONSULTATION_SHARE)
    budgets = {name: round(total * share, 2) for name, _, _, share in shares}
    budgets["appraisal"] = round(total - sum(v for k, v in budgets.items() if k != "appraisal"), 2)
    return tuple(
        Step(name, role, where, Duration(budgets[name], unit)) for name, role, where, _ in shares
    )


class Catalog:
    """Every procedure's versions, by code; plus document names."""

    def __init__(
        self,
        versions: Mapping[str, tuple[ProcedureVersion, ...]],
        document_names: Mapping[str, str],
        extra_documents: tuple[str, ...],
    ) -> None:
        self._versions = dict(versions)
        self._documents = dict(document_names)
        self.extra_documents = extra_documents
        """Codes of documents no procedure lists (``0.000000.X01``...)."""
        self.codes: tuple[str, ...] = tuple(sorted(self._versions))

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, code: object) -> bool:
        return code in self._versions

    def __iter__(self) -> Iterator[str]:
        return iter(self.codes)

    def versions(self, code: str) -> tuple[ProcedureVersion, ...]:
        """All versions of a procedure, oldest first."""
        try:
            return self._versions[code]
        except KeyError:
            raise CatalogError(f"unknown procedure code {code!r}") from None

    def version(self, code: str, version: str) -> ProcedureVersion:
        for v in self.versions(code):
            if v.version == version:
                return v
        raise CatalogError(f"procedure {code} has no version {version!r}")

    def latest(self, code: str) -> ProcedureVersion:
        return self.versions(code)[-1]

    def in_force(self, code: str, day: date) -> ProcedureVersion | None:
        """The version valid on ``day``, or None if the procedure was not published that day."""
        for v in reversed(self.versions(code)):
            if v.covers(day):
                return v
        return None

    def is_valid(self, code: str, version: str, day: date) -> bool:
        """Whether ``version`` of ``code`` could lawfully be used on ``day``.

        False for an unknown code or version (a receipt under it is irregular too).
        """
        try:
            return self.version(code, version).covers(day)
        except CatalogError:
            return False

    def is_listed(self, code: str, version: str, document: str) -> bool:
        """Whether ``document`` is on the required list of that version."""
        return document in self.version(code, version).documents

    def document_name(self, document: str) -> str:
        """The name of a document code; CatalogError if unknown."""
        try:
            return self._documents[document]
        except KeyError:
            raise CatalogError(f"unknown document code {document!r}") from None


def _version(proc: Mapping[str, Any], raw: Mapping[str, Any]) -> ProcedureVersion:
    code = proc["code"]
    allowance = Duration.parse(raw["allowance"])
    return ProcedureVersion(
        code=code,
        version=raw["version"],
        name=proc["name"],
        level=tuple(proc["level"]),
        field=proc["field"],
        agency=proc["agency"],
        allowance=allowance,
        channels=tuple(proc["channels"]),
        online_level=proc["online_level"],
        documents=tuple(f"{code}.{d}" for d in raw["documents"]),
        valid_from=date.fromisoformat(raw["valid_from"]),
        valid_to=None if raw["valid_to"] is None else date.fromisoformat(raw["valid_to"]),
        steps=step_plan(code, allowance),
        assumed=tuple(proc["assumed"]),
    )


def build_catalog(raw: Mapping[str, Any]) -> Catalog:
    """A catalog from the parsed packaged JSON (tests may pass a small one)."""
    versions: dict[str, tuple[ProcedureVersion, ...]] = {}
    names: dict[str, str] = {}
    for proc in raw["procedures"]:
        code = proc["code"]
        for i, name in enumerate(proc["documents"], start=1):
            names[f"{code}.D{i:02d}"] = name
        for i, name in enumerate(proc.get("retired", ()), start=1):
            names[f"{code}.R{i:02d}"] = name
        versions[code] = tuple(_version(proc, v) for v in proc["versions"])
    extras = []
    for i, name in enumerate(raw.get("extra_documents", ()), start=1):
        doc = f"{EXTRA_PREFIX}.X{i:02d}"
        names[doc] = name
        extras.append(doc)
    return Catalog(versions, names, tuple(extras))


@functools.cache
def load_catalog() -> Catalog:
    """The packaged catalog (2,642 national procedures), loaded once."""
    blob = resources.files("ledger.domain").joinpath("catalogdata", PACKAGED).read_bytes()
    return build_catalog(json.loads(gzip.decompress(blob)))
