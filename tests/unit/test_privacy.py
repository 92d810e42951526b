"""Crypto-shredding: sealed applicant blocks, stable pseudonyms, a deleted key erases the person."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from ledger.domain.events import validate
from ledger.domain.privacy import (
    PSEUDONYM_PREFIX,
    new_key,
    pseudonym,
    seal_applicant,
    unseal_applicant,
)

SECRET = b"s" * 32
APPLICANT = {"name": "Phạm Thị D", "id_number": "079 123 456 789", "phone": "0901", "address": "x"}


class MemoryKeys:
    """The KeyStore protocol in memory (the SQLite and PostgreSQL ones are integration-tested)."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    def secret(self) -> bytes:
        return SECRET

    def keys_for(self, pseudonyms: list[str], *, create: bool) -> dict[str, bytes]:
        if create:
            for p in pseudonyms:
                self.keys.setdefault(p, new_key())
        return {p: self.keys[p] for p in pseudonyms if p in self.keys}

    def forget(self, pseudonym: str) -> bool:
        return self.keys.pop(pseudonym, None) is not None


def test_pseudonym_is_stable_keyed_and_normalised() -> None:
    p = pseudonym(SECRET, "079123456789")
    assert p.startswith(PSEUDONYM_PREFIX) and len(p) == 27
    assert pseudonym(SECRET, " 079 123 456 789 ") == p
    assert pseudonym(SECRET, "a12") == pseudonym(SECRET, "A12")
    assert pseudonym(b"t" * 32, "079123456789") != p
    assert "079123456789" not in p


def test_seal_then_unseal_round_trips_and_hides_everything() -> None:
    keys = MemoryKeys()
    pseudo = pseudonym(SECRET, APPLICANT["id_number"])
    key = keys.keys_for([pseudo], create=True)[pseudo]
    block = seal_applicant(APPLICANT, pseudo, key)
    assert set(block) == {"pseudonym", "sealed"}
    raw = base64.b64decode(block["sealed"])
    assert b"079" not in raw and "Phạm".encode() not in raw
    assert unseal_applicant(block, key) == APPLICANT
    assert seal_applicant(APPLICANT, pseudo, key)["sealed"] != block["sealed"]  # fresh nonce


def test_a_sealed_block_is_a_valid_applicant_field() -> None:
    pseudo = pseudonym(SECRET, APPLICANT["id_number"])
    block = seal_applicant(APPLICANT, pseudo, new_key())
    env = {
        "event_id": "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
        "dossier_id": "D-1",
        "type": "DossierReceived",
        "occurred_at": "2025-09-01T08:00:00+07:00",
        "actor": {"id": "tn-01", "role": "receiver", "agency": "a"},
        "data": {
            "procedure_code": "p",
            "procedure_version": "v",
            "agency": "a",
            "channel": "direct",
            "applicant": block,
            "documents": [],
            "processing_time": {"unit": "same_day"},
        },
        "schema_version": 2,
    }
    assert validate(env)["data"]["applicant"] == block


def test_forgetting_the_key_erases_the_person() -> None:
    keys = MemoryKeys()
    pseudo = pseudonym(SECRET, APPLICANT["id_number"])
    block = seal_applicant(APPLICANT, pseudo, keys.keys_for([pseudo], create=True)[pseudo])
    assert keys.forget(pseudo) is True
    assert unseal_applicant(block, keys.keys_for([pseudo], create=False).get(pseudo)) is None
    assert keys.forget(pseudo) is False


def test_the_pseudonym_is_bound_to_the_ciphertext() -> None:
    key = new_key()
    pseudo = pseudonym(SECRET, APPLICANT["id_number"])
    block = seal_applicant(APPLICANT, pseudo, key)
    with pytest.raises(InvalidTag):
        unseal_applicant({**block, "pseudonym": pseudonym(SECRET, "other")}, key)
    with pytest.raises(InvalidTag):
        unseal_applicant(block, new_key())
