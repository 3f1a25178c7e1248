"""The operator's Ed25519 key that signs audit-log entries and checkpoints.

Resolution order:

1. ``RLHF_WIZARD_OPERATOR_KEY``: path to an encrypted PKCS#8 PEM key, decrypted with
   ``RLHF_WIZARD_KEY_PASSPHRASE``; its public key is read from the ``.pub`` file beside it
   (``operator.key.pem``/``operator.pem`` -> ``operator.pub``) or derived from the private key.
2. Otherwise a per-lake key ``<root>/keys/operator.pem`` (mode 0600), created on first use
   (encrypted when ``RLHF_WIZARD_KEY_PASSPHRASE`` is set), with ``<root>/keys/operator.pub``.

Public keys are written as ``ed25519:<base64 of the 32 raw bytes>`` and identified by the hex
SHA-256 of those bytes: the formats of :mod:`rlhf_core.security.keys`, the one key module.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rlhf_core.errors import KeyFileError
from rlhf_core.lake.fs import write_bytes_atomic
from rlhf_core.lake.store import Lake
from rlhf_core.security.keys import (
    PASSPHRASE_ENV,
    key_id_of,
    parse_public_key,
    public_key_string,
    public_path_for,
)

OPERATOR_KEY_ENV = "RLHF_WIZARD_OPERATOR_KEY"

__all__ = ["OPERATOR_KEY_ENV", "OperatorKey", "load_operator_key", "trusted_operator_keys"]


@dataclass(frozen=True)
class OperatorKey:
    """A loaded signing key, its public key and its key id."""

    private: Ed25519PrivateKey
    key_id: str
    source: str

    def sign(self, message: bytes) -> str:
        """Base64 Ed25519 signature of ``message``."""
        return base64.b64encode(self.private.sign(message)).decode("ascii")


def _load_private(path: Path, passphrase: str | None) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read operator key ({exc.strerror}); check "
                           f"{OPERATOR_KEY_ENV} and the file permissions") from exc
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode("utf-8") if passphrase else None)
    except TypeError as exc:
        raise KeyFileError(f"{path}: the operator key is encrypted; set {PASSPHRASE_ENV}") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path}: cannot decrypt or parse the operator key (wrong "
                           f"{PASSPHRASE_ENV}, or not a PKCS#8 PEM Ed25519 key)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: the operator key is not Ed25519; create one with "
                           "`rlhf-wizard contract keygen`")
    return key


def _lake_key_path(lake: Lake) -> Path:
    return Path(lake.path("keys", "operator.pem"))


def _create_lake_key(path: Path, passphrase: str | None) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    encryption = (serialization.BestAvailableEncryption(passphrase.encode("utf-8")) if passphrase
                  else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key first: keep theirs
    except FileExistsError:
        os.unlink(tmp)
        return _load_private(path, passphrase)
    os.unlink(tmp)
    write_bytes_atomic(pafs.LocalFileSystem(), str(public_path_for(path)),
                       (public_key_string(key.public_key()) + "\n").encode("ascii"))
    return key


def load_operator_key(lake: Lake) -> OperatorKey:
    """The operator signing key (from ``RLHF_WIZARD_OPERATOR_KEY`` or the lake's own key).

    Creates ``<root>/keys/operator.pem`` (0600) and ``operator.pub`` on first use.

    Raises:
        KeyFileError: If the configured key cannot be read or decrypted.
    """
    passphrase = os.environ.get(PASSPHRASE_ENV) or None
    configured = os.environ.get(OPERATOR_KEY_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not passphrase:
            raise KeyFileError(f"{OPERATOR_KEY_ENV}={path} needs its passphrase in {PASSPHRASE_ENV}")
        key = _load_private(path, passphrase)
    else:
        path = _lake_key_path(lake)
        key = _load_private(path, passphrase) if path.exists() else _create_lake_key(path, passphrase)
    return OperatorKey(private=key, key_id=key_id_of(key.public_key()), source=str(path))


def trusted_operator_keys(lake: Lake) -> dict[str, Ed25519PublicKey]:
    """Public keys trusted by default when verifying: the lake's and the configured operator's.

    ``.pub`` files are read (the configured key's public half is derived from it only when it
    has no ``.pub`` and the passphrase is set). For an independent check, pin the
    expected key instead (``rlhf-wizard audit verify --pubkey``), since whoever can rewrite the
    log can also replace ``<root>/keys/operator.pub``.
    """
    candidates = [Path(lake.path("keys", "operator.pub"))]
    configured = os.environ.get(OPERATOR_KEY_ENV)
    if configured:
        candidates.append(public_path_for(Path(configured).expanduser()))
    keys = {}
    for path in candidates:
        if path.is_file():
            public = parse_public_key(path.read_text(encoding="utf-8"), where=str(path))
            keys[key_id_of(public)] = public
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if configured and passphrase and not candidates[-1].is_file():
        # No .pub beside the configured key: derive it (needs the passphrase).
        public = _load_private(Path(configured).expanduser(), passphrase).public_key()
        keys[key_id_of(public)] = public
    return keys
