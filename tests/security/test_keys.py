"""Ed25519 key files: encrypted PKCS#8, mode 0600, clean failures."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rlhf_core.errors import KeyFileError
from rlhf_core.security.keys import (
    PASSPHRASE_ENV,
    generate_keypair,
    key_id,
    load_private_key,
    parse_public_key,
    public_key_string,
    resolve_passphrase,
)

PASS = b"correct horse battery"


def test_keygen_writes_encrypted_private_key_and_public_key(tmp_path: Path) -> None:
    private = tmp_path / "keys" / "alice.key.pem"
    public = generate_keypair(private, PASS)
    data = private.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "alice.pub").read_text().strip() == public
    key = load_private_key(private, PASS)
    assert public_key_string(key.public_key()) == public
    assert not list((tmp_path / "keys").glob("*.tmp"))


def test_wrong_passphrase_fails_cleanly(tmp_path: Path) -> None:
    private = tmp_path / "k.key.pem"
    generate_keypair(private, PASS)
    with pytest.raises(KeyFileError, match="wrong passphrase") as info:
        load_private_key(private, b"not the passphrase")
    assert str(private) in str(info.value)
    assert "\n" not in str(info.value)


def test_keygen_refuses_to_overwrite_and_to_skip_encryption(tmp_path: Path) -> None:
    private = tmp_path / "k.key.pem"
    first = generate_keypair(private, PASS)
    with pytest.raises(KeyFileError, match="already exists"):
        generate_keypair(private, PASS)
    assert generate_keypair(private, PASS, overwrite=True) != first
    with pytest.raises(KeyFileError, match="unencrypted"):
        generate_keypair(tmp_path / "other.key.pem", b"")


def test_unencrypted_or_missing_key_files_are_rejected(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pem"
    plain.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not an encrypted PKCS#8"):
        load_private_key(plain, PASS)
    with pytest.raises(KeyFileError, match="cannot read key file"):
        load_private_key(tmp_path / "absent.pem", PASS)


def test_public_key_parsing(tmp_path: Path) -> None:
    public = generate_keypair(tmp_path / "k.key.pem", PASS)
    assert public_key_string(parse_public_key(public)) == public
    assert len(key_id(public)) == 64
    with pytest.raises(KeyFileError, match="must start with"):
        parse_public_key("rsa:AAAA")
    with pytest.raises(KeyFileError, match="32 bytes"):
        parse_public_key("ed25519:AAAA")
    with pytest.raises(KeyFileError, match="base64"):
        parse_public_key("ed25519:!!!")


def test_passphrase_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "long enough secret")
    assert resolve_passphrase() == b"long enough secret"
    monkeypatch.setenv(PASSPHRASE_ENV, "short")
    with pytest.raises(KeyFileError, match="at least 8"):
        resolve_passphrase()


def test_no_passphrase_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(KeyFileError, match=PASSPHRASE_ENV):
        resolve_passphrase()
