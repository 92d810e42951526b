"""Personal data by crypto-shredding (Decree 13/2023/NĐ-CP).

The applicant block (name, ID number, phone, address) is encrypted with a key
of that applicant, kept in a key store apart from the events. The event stores
only ``{"pseudonym", "sealed"}``: the hash chain covers the ciphertext, so
deleting the key erases the person from every event while every chain still
verifies. Everyone downstream sees only the keyed pseudonym, which is stable
across an applicant's dossiers (needed for signals such as ``online_to_paper``)
yet cannot be reversed without the pseudonym secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any, Protocol

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PSEUDONYM_PREFIX = "ap-"


class KeyStore(Protocol):
    """Where applicant keys live; deleting a key shreds that applicant's data."""

    def secret(self) -> bytes:
        """The installation's pseudonym secret (created on first use)."""

    def keys_for(self, pseudonyms: list[str], *, create: bool) -> dict[str, bytes]:
        """Keys of these applicants; with ``create``, missing ones are made and stored."""

    def forget(self, pseudonym: str) -> bool:
        """Delete the applicant's key; True if there was one."""


def pseudonym(secret: bytes, id_number: str) -> str:
    """Keyed, stable pseudonym of an applicant (HMAC-SHA256 of the normalised ID)."""
    norm = "".join(id_number.split()).upper()
    return PSEUDONYM_PREFIX + hmac.new(secret, norm.encode(), hashlib.sha256).hexdigest()[:24]


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal_applicant(applicant: dict[str, Any], pseudo: str, key: bytes) -> dict[str, str]:
    """Encrypt an applicant block; the pseudonym is bound as associated data."""
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(
        nonce, orjson.dumps(applicant, option=orjson.OPT_SORT_KEYS), pseudo.encode()
    )
    return {"pseudonym": pseudo, "sealed": base64.b64encode(nonce + ct).decode("ascii")}


def unseal_applicant(block: dict[str, Any], key: bytes | None) -> dict[str, Any] | None:
    """The applicant's personal data, or None once the key has been shredded."""
    if key is None or "sealed" not in block:
        return None
    raw = base64.b64decode(block["sealed"])
    plain = AESGCM(key).decrypt(raw[:12], raw[12:], block["pseudonym"].encode())
    return orjson.loads(plain)
