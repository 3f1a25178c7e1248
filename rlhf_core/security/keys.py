"""Ed25519 approval keys: encrypted PKCS#8 private key files and ``ed25519:<base64>`` public keys.

Private keys are written as PEM PKCS#8 encrypted with the best encryption ``cryptography``
offers, with file mode 0600, atomically (temporary file + rename). The passphrase comes from
the ``RLHF_WIZARD_KEY_PASSPHRASE`` environment variable or an interactive prompt.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import os
import sys
import tempfile
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rlhf_core.errors import KeyFileError

PASSPHRASE_ENV = "RLHF_WIZARD_KEY_PASSPHRASE"
PUBLIC_PREFIX = "ed25519:"
MIN_PASSPHRASE = 8


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The temporary file is created with ``mode`` already set, so a private key is never
    readable by others, not even briefly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_passphrase(*, confirm: bool = False) -> bytes:
    """The key passphrase from ``RLHF_WIZARD_KEY_PASSPHRASE`` or an interactive prompt.

    Args:
        confirm: Ask twice (when creating a key interactively).

    Raises:
        KeyFileError: No environment variable and no terminal to prompt on, mismatching
            confirmation, or a passphrase shorter than 8 characters.
    """
    return passphrase_from(PASSPHRASE_ENV, "key", confirm=confirm)


def passphrase_from(env: str, label: str, *, confirm: bool = False,
                    error: type[KeyFileError] = KeyFileError) -> bytes:
    """A passphrase from the environment variable ``env``, else a prompt on the terminal (twice
    when ``confirm``); ``label`` names it in prompts and errors ("key", "lake").

    Raises:
        error: No variable and no terminal, mismatching confirmation, or fewer than 8 characters.
    """
    value = os.environ.get(env)
    if value is None:
        if not sys.stdin.isatty():
            raise error(f"no {label} passphrase: set {env} or run in a terminal to be prompted")
        value = getpass.getpass(f"{label.capitalize()} passphrase: ")
        if confirm and getpass.getpass("Repeat passphrase: ") != value:
            raise error("the two passphrases differ; run the command again")
    if len(value) < MIN_PASSPHRASE:
        raise error(f"{label} passphrase must have at least {MIN_PASSPHRASE} characters")
    return value.encode("utf-8")


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_string(key: Ed25519PublicKey) -> str:
    """``ed25519:<base64 of the 32 raw bytes>``: the one text form of a public key."""
    return PUBLIC_PREFIX + base64.b64encode(_raw(key)).decode("ascii")


def parse_public_key(text: str, where: str = "public key") -> Ed25519PublicKey:
    """Parse ``ed25519:<base64>`` or a PEM SubjectPublicKeyInfo Ed25519 public key.

    Args:
        text: The key text (surrounding whitespace is ignored).
        where: What the text came from (a file, a contract field), named in errors.

    Raises:
        KeyFileError: Neither form: wrong prefix, bad base64, not 32 bytes, not Ed25519.
    """
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"{where}: unreadable PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{where}: the PEM public key is not Ed25519")
        return key
    if not text.startswith(PUBLIC_PREFIX):
        raise KeyFileError(f"{where} must start with '{PUBLIC_PREFIX}' (or be a PEM public key), "
                           f"got {text[:20]!r}")
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{where} {text[:24]}... is not valid base64") from None
    if len(raw) != 32:
        raise KeyFileError(f"{where} must be 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    """The key id of a public key: hex SHA-256 of its 32 raw bytes (the DSSE ``keyid``)."""
    return hashlib.sha256(_raw(public)).hexdigest()


def key_id(public_key: str) -> str:
    """The key id of a public key given as text (see :func:`parse_public_key`)."""
    return key_id_of(parse_public_key(public_key))


def generate_keypair(private_path: str | Path, passphrase: bytes, *, overwrite: bool = False) -> str:
    """Create an Ed25519 key pair; write the encrypted private key and ``<stem>.pub``.

    Args:
        private_path: Where to write the encrypted PKCS#8 PEM private key (mode 0600).
        passphrase: Encryption passphrase (see :func:`resolve_passphrase`).
        overwrite: Replace an existing key file (refused by default).

    Returns:
        The public key as ``ed25519:<base64>`` (also written to ``<private_path stem>.pub``).

    Raises:
        KeyFileError: The key file exists and ``overwrite`` is false, or the passphrase is empty.
    """
    path = Path(private_path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: key file already exists; choose another path or remove it")
    if not passphrase:
        raise KeyFileError("refusing to write an unencrypted private key: give a passphrase")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    public = public_key_string(key.public_key())
    atomic_write(path, pem, mode=0o600)
    atomic_write(public_path_for(path), (public + "\n").encode("ascii"))
    return public


def public_path_for(private_path: Path) -> Path:
    """``alice.key.pem`` -> ``alice.pub``; other names get ``.pub`` in place of the suffix."""
    name = private_path.name
    for suffix in (".key.pem", ".pem", ".key"):
        if name.endswith(suffix):
            return private_path.with_name(name[: -len(suffix)] + ".pub")
    return private_path.with_name(name + ".pub")


def load_private_key(path: str | Path, passphrase: bytes) -> Ed25519PrivateKey:
    """Load and decrypt an encrypted PKCS#8 Ed25519 private key.

    Raises:
        KeyFileError: Missing file, wrong passphrase, unencrypted or non-Ed25519 key.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{p}: cannot read key file ({exc.strerror})") from None
    if b"ENCRYPTED PRIVATE KEY" not in data:
        raise KeyFileError(f"{p}: not an encrypted PKCS#8 PEM key; create keys with keygen")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except ValueError:
        raise KeyFileError(
            f"{p}: cannot decrypt the private key: wrong passphrase (check {PASSPHRASE_ENV})"
        ) from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{p}: unreadable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{p}: not an Ed25519 key; create keys with keygen")
    return key
