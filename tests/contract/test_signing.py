"""Approval envelopes: any change to the contract or envelope bytes fails verification."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.errors import ContractError
from rlhf_core.security.approval import sign, verify
from rlhf_core.security.dsse import envelope_path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "configs" / "contracts"
PASSPHRASE = b"demo-only-not-secret"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The demo contract freshly signed by users and safety_board: (contract, envelope) bytes."""
    folder = tmp_path_factory.mktemp("signed")
    contract = folder / "demo.yaml"
    shutil.copy(EXAMPLES / "demo.yaml", contract)
    for who in ("users", "safety_board"):
        sign(contract, EXAMPLES / "keys" / f"{who}.key.pem", who, PASSPHRASE)
    assert verify(contract).approved
    return contract.read_bytes(), envelope_path(contract).read_bytes()


def _verify_bytes(folder: Path, contract: bytes, envelope: bytes) -> bool:
    path = folder / "demo.yaml"
    path.write_bytes(contract)
    envelope_path(path).write_bytes(envelope)
    try:
        return verify(path).approved
    except ContractError:
        return False


def _flip(data: bytes, index: int, value: int) -> bytes:
    index %= len(data)
    new = value if value != data[index] else (value + 1) % 256
    return data[:index] + bytes([new]) + data[index + 1:]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(index=st.integers(0, 10**6), value=st.integers(0, 255))
def test_changing_any_contract_byte_fails_verify(
    signed: tuple[bytes, bytes], tmp_path: Path, index: int, value: int
) -> None:
    contract, envelope = signed
    assert not _verify_bytes(tmp_path, _flip(contract, index, value), envelope)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(index=st.integers(0, 10**6), value=st.integers(0, 255))
def test_changing_any_envelope_byte_fails_verify(
    signed: tuple[bytes, bytes], tmp_path: Path, index: int, value: int
) -> None:
    contract, envelope = signed
    assert not _verify_bytes(tmp_path, contract, _flip(envelope, index, value))


def test_unchanged_bytes_verify(signed: tuple[bytes, bytes], tmp_path: Path) -> None:
    assert _verify_bytes(tmp_path, *signed)


def test_appending_a_comment_fails_with_a_precise_reason(
    signed: tuple[bytes, bytes], tmp_path: Path
) -> None:
    contract, envelope = signed
    path = tmp_path / "demo.yaml"
    path.write_bytes(contract + b"# reviewed\n")
    envelope_path(path).write_bytes(envelope)
    report = verify(path)
    assert not report.approved
    assert "file changed since signing (same canonical hash" in report.summary()


def test_changing_the_meaning_reports_hash_mismatch(
    signed: tuple[bytes, bytes], tmp_path: Path
) -> None:
    contract, envelope = signed
    path = tmp_path / "demo.yaml"
    path.write_bytes(contract.replace(b"weight: 0.5", b"weight: 0.6"))
    envelope_path(path).write_bytes(envelope)
    assert "hash mismatch: the envelope approves sha256:" in verify(path).summary()
