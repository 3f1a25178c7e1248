"""The lake's master key file: versioned AES-256 master keys sealed under a passphrase.

``<root>/keys/master.key`` is a small JSON document::

    {"format": "rlhf-wizard/lake-master-key/v1",
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64>"},
     "current": 2, "versions": [2],
     "nonce": "<base64>", "ciphertext": "<base64>"}

The ciphertext is AES-256-GCM under a key derived from the passphrase with scrypt; it holds the
master keys by version (``{"keys": {"2": "<base64 of 32 bytes>"}}``). Every field outside the
ciphertext is bound to it as associated data, so the header (current version, versions, KDF
parameters) cannot be edited without the passphrase; it stays readable so ``keys status`` and
``doctor`` can report the version without one. Each save draws a fresh salt and nonce.

The passphrase comes from ``RLHF_WIZARD_LAKE_PASSPHRASE`` (a flow that runs from a deployment can
fill it from a Prefect Secret block: :mod:`ops.lake_secret`). A wrong passphrase or an altered
file fail with one :class:`~rlhf_core.errors.LakeKeyError` line.

References:
    Percival & Josefsson, "The scrypt Password-Based Key Derivation Function", RFC 7914 (2016).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow.fs as pafs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from rlhf_core.errors import LakeKeyError
from rlhf_core.lake.fs import is_local, write_bytes_atomic

KEY_FILE_FORMAT = "rlhf-wizard/lake-master-key/v1"
LAKE_PASSPHRASE_ENV = "RLHF_WIZARD_LAKE_PASSPHRASE"
MIN_PASSPHRASE = 8
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_KEY_BYTES = 32

__all__ = [
    "KEY_FILE_FORMAT", "LAKE_PASSPHRASE_ENV", "KeyFileHeader", "KeyRing", "lake_passphrase",
    "load_key_ring", "read_header", "write_key_ring",
]


@dataclass(frozen=True)
class KeyRing:
    """Master keys by version; ``current`` wraps every new data key.

    Attributes:
        current: The version new wraps use.
        keys: 32-byte AES keys by version (more than one only while a rotation is unfinished).
    """

    current: int
    keys: Mapping[int, bytes]

    @classmethod
    def fresh(cls, version: int = 1) -> KeyRing:
        """A ring with one new random master key."""
        return cls(version, {version: secrets.token_bytes(_KEY_BYTES)})

    def rotated(self) -> KeyRing:
        """This ring plus a new random key as the next version (the old ones are kept)."""
        version = max(self.keys) + 1
        return KeyRing(version, {**self.keys, version: secrets.token_bytes(_KEY_BYTES)})

    def current_only(self) -> KeyRing:
        """This ring without its old versions (after every data key was re-wrapped)."""
        return KeyRing(self.current, {self.current: self.keys[self.current]})

    @property
    def fingerprint(self) -> str:
        """A digest naming this exact set of keys in process caches (never written anywhere)."""
        h = hashlib.sha256(str(self.current).encode())
        for version in sorted(self.keys):
            h.update(version.to_bytes(4, "big") + self.keys[version])
        return h.hexdigest()


@dataclass(frozen=True)
class KeyFileHeader:
    """What a key file says without the passphrase: its current version and every version held."""

    current: int
    versions: tuple[int, ...]


def lake_passphrase() -> bytes | None:
    """The passphrase from ``RLHF_WIZARD_LAKE_PASSPHRASE``, or None when it is not set.

    Raises:
        LakeKeyError: It is set but shorter than 8 characters.
    """
    value = os.environ.get(LAKE_PASSPHRASE_ENV)
    if value is None:
        return None
    if len(value) < MIN_PASSPHRASE:
        raise LakeKeyError(f"{LAKE_PASSPHRASE_ENV} must have at least {MIN_PASSPHRASE} characters")
    return value.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=_KEY_BYTES, n=n, r=r, p=p).derive(passphrase)


def _aad(document: Mapping[str, object]) -> bytes:
    header = {k: v for k, v in document.items() if k not in ("nonce", "ciphertext")}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def write_key_ring(filesystem: pafs.FileSystem, path: str, ring: KeyRing, passphrase: bytes) -> None:
    """Seal ``ring`` under ``passphrase`` and write it to ``path`` atomically (0600 on a local disk).

    Raises:
        LakeError: The file cannot be written.
    """
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    document: dict[str, object] = {
        "format": KEY_FILE_FORMAT, "kdf": {"name": "scrypt", **_SCRYPT, "salt": _b64(salt)},
        "current": ring.current, "versions": sorted(ring.keys),
    }
    secret = json.dumps({"keys": {str(v): _b64(k) for v, k in ring.keys.items()}}).encode("utf-8")
    sealed = AESGCM(_derive(passphrase, salt, **_SCRYPT)).encrypt(nonce, secret, _aad(document))
    document.update(nonce=_b64(nonce), ciphertext=_b64(sealed))
    write_bytes_atomic(filesystem, path, json.dumps(document, indent=2).encode("utf-8") + b"\n")
    if is_local(filesystem):
        os.chmod(path, 0o600)
    with _LOCK:
        _RINGS.clear()


def _read_document(filesystem: pafs.FileSystem, path: str) -> tuple[bytes, dict]:
    try:
        with filesystem.open_input_stream(path) as stream:
            raw = stream.read()
    except FileNotFoundError:
        raise LakeKeyError(f"no lake master key at {path}; create one with `rlhf-wizard keys init`") from None
    except OSError as exc:
        raise LakeKeyError(f"cannot read the lake master key {path}: {exc}; check its permissions") from exc
    try:
        document = json.loads(raw)
        if document.get("format") != KEY_FILE_FORMAT:
            raise ValueError(f"format {document.get('format')!r}")
    except (ValueError, AttributeError) as exc:
        raise LakeKeyError(f"{path} is not a lake master key file ({exc}); restore it from a "
                           "backup (without it the encrypted text cannot be read)") from None
    return raw, document


def read_header(filesystem: pafs.FileSystem, path: str) -> KeyFileHeader:
    """The unencrypted header of a key file (no passphrase needed).

    Raises:
        LakeKeyError: The file is missing or not a lake master key file.
    """
    _, document = _read_document(filesystem, path)
    try:
        return KeyFileHeader(int(document["current"]), tuple(int(v) for v in document["versions"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise LakeKeyError(f"{path}: malformed key file header ({exc}); restore it from a backup") from None


_LOCK = threading.Lock()
_RINGS: dict[tuple[str, str, str], KeyRing] = {}


def load_key_ring(filesystem: pafs.FileSystem, path: str, passphrase: bytes) -> KeyRing:
    """Open the key file at ``path`` with ``passphrase`` (memoised per file content and passphrase,
    so the deliberately slow scrypt runs once per process, not once per file read).

    Raises:
        LakeKeyError: Missing or malformed file, or a wrong passphrase / altered file.
    """
    raw, document = _read_document(filesystem, path)
    memo = (path, hashlib.sha256(raw).hexdigest(), hashlib.sha256(passphrase).hexdigest())
    with _LOCK:
        if memo in _RINGS:
            return _RINGS[memo]
    try:
        kdf = document["kdf"]
        key = _derive(passphrase, base64.b64decode(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
        secret = AESGCM(key).decrypt(base64.b64decode(document["nonce"]),
                                     base64.b64decode(document["ciphertext"]), _aad(document))
    except InvalidTag:
        raise LakeKeyError(f"cannot unlock the lake master key {path}: wrong passphrase or an altered "
                           f"file; set {LAKE_PASSPHRASE_ENV} to the passphrase given to "
                           "`rlhf-wizard keys init`") from None
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise LakeKeyError(f"{path}: malformed key file ({exc}); restore it from a backup") from None
    keys = {int(v): base64.b64decode(k) for v, k in json.loads(secret)["keys"].items()}
    ring = KeyRing(int(document["current"]), keys)
    if ring.current not in keys:
        raise LakeKeyError(f"{path}: current version {ring.current} is not among the sealed keys; "
                           "restore the key file from a backup")
    with _LOCK:
        _RINGS[memo] = ring
    return ring
