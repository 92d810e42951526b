"""Ed25519 signatures on Merkle digests, so a third party can hold the operator to them.

A digest alone is a plain file the database's operator could reissue after a
rewrite. Signed with a key the operator publishes once (``dossier keys init``
prints the public key), and kept by others (auditors, the ``dossier.digests``
topic), it becomes a commitment: a later log that does not extend it proves a
rewrite, and a forged digest fails the signature check.

Signed bytes: the canonical JSON (sorted keys, compact, UTF-8; as for event
hashes) of the digest without its ``signature`` field. The signature block
names the algorithm and the signer's public key (raw 32 bytes, hex); a verifier
trusts only the public key it was given, never the one inside the file.

Key files: ``DOSSIER_SIGNING_KEY`` (a path), else ``DATA_DIR/signing.key``
(PKCS#8 PEM, mode 0600) with the public key beside it as ``signing.pub``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.domain.hashchain import canonical

if TYPE_CHECKING:
    from ledger.settings import Settings

SIGNATURE_ALGORITHM = "ed25519"
KEY_FILE = "signing.key"


class SignatureError(ValueError):
    """A digest's signature is missing, malformed, or does not verify."""


def key_path(settings: Settings) -> Path:
    """Where the private key lives: ``DOSSIER_SIGNING_KEY`` (``settings.signing_key``) or
    ``DATA_DIR/signing.key``."""
    given = settings.signing_key
    return Path(given) if given else settings.data_dir / KEY_FILE


def public_path(private: Path) -> Path:
    return private.with_suffix(".pub")


class KeyExists(FileExistsError):
    """A signing key is already there: replacing it would orphan every digest it signed."""


class NoSigningKey(FileNotFoundError):
    """No signing key where the settings say (``dossier keys init`` makes one)."""


def init_keys(private: Path, *, force: bool = False) -> str:
    """Write a new key pair; return the public key (hex). Refuses to overwrite."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if private.exists() and not force:
        raise KeyExists(
            f"{private} exists: a new key would orphan every digest signed so far "
            "(pass --force to replace it anyway)"
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private.parent.mkdir(parents=True, exist_ok=True)
    tmp = private.with_name(private.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, private)
    public = _public_hex(key)
    public_path(private).write_text(public + "\n", encoding="utf-8")
    return public


def load_private(private: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    except FileNotFoundError:
        raise NoSigningKey(
            f"no signing key at {private}: run `dossier keys init` (or set DOSSIER_SIGNING_KEY)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{private}: not an Ed25519 private key")
    return key


def _public_hex(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def parse_public_key(given: str) -> str:
    """A public key as 64 hex digits, from the hex itself or a file holding it (or PEM)."""
    text = given.strip()
    path = Path(text)
    if len(text) != 64 and path.is_file():
        text = path.read_text(encoding="utf-8").strip()
        if text.startswith("-----BEGIN"):
            from cryptography.hazmat.primitives import serialization

            key = serialization.load_pem_public_key(text.encode())
            return key.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            ).hex()
    text = text.removeprefix("ed25519:")
    try:
        if len(bytes.fromhex(text)) == 32:
            return text.lower()
    except ValueError:
        pass
    raise SignatureError(f"not an Ed25519 public key (64 hex digits or a key file): {given!r}")


def signed_bytes(digest: dict[str, Any]) -> bytes:
    return canonical({k: v for k, v in digest.items() if k != "signature"})


def sign_digest(digest: dict[str, Any], private: Path) -> dict[str, Any]:
    """The digest with a ``signature`` block over all its other fields."""
    key = load_private(private)
    body = {k: v for k, v in digest.items() if k != "signature"}
    return body | {
        "signature": {
            "algorithm": SIGNATURE_ALGORITHM,
            "public_key": _public_hex(key),
            "value": key.sign(signed_bytes(body)).hex(),
        }
    }


def verify_signature(digest: dict[str, Any], public_key: str) -> None:
    """Raise :class:`SignatureError` unless ``public_key`` signed exactly this digest."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig = digest.get("signature")
    if not isinstance(sig, dict):
        raise SignatureError("digest is not signed (no signature block)")
    if sig.get("algorithm") != SIGNATURE_ALGORITHM:
        raise SignatureError(f"unsupported signature algorithm {sig.get('algorithm')!r}")
    try:
        value = bytes.fromhex(str(sig.get("value", "")))
    except ValueError:
        raise SignatureError("signature value is not hex") from None
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(parse_public_key(public_key)))
    try:
        key.verify(value, signed_bytes(digest))
    except InvalidSignature:
        raise SignatureError(
            "signature does not verify with the given public key (forged or altered digest)"
        ) from None
