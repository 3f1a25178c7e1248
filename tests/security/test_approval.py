"""Signing and quorum verification with precise failure messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rlhf_core.contract import load_contract
from rlhf_core.errors import KeyFileError, SignatureError
from rlhf_core.security.approval import require_approved, sign, statement_for, verify
from rlhf_core.security.dsse import (
    PAYLOAD_TYPE,
    Envelope,
    Signature,
    envelope_path,
    pae,
    read_envelope,
    write_envelope,
)
from rlhf_core.security.keys import key_id, public_key_string

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "configs" / "contracts"
KEYS = EXAMPLES / "keys"
PASS = b"demo-only-not-secret"


@pytest.fixture()
def demo(tmp_path: Path) -> Path:
    """An unsigned copy of the demo contract (3 keyed stakeholders, quorum 2)."""
    path = tmp_path / "demo.yaml"
    shutil.copy(EXAMPLES / "demo.yaml", path)
    return path


def _sign(path: Path, who: str) -> None:
    sign(path, KEYS / f"{who}.key.pem", who, PASS)


def test_quorum_not_met_names_who_signed(demo: Path) -> None:
    _sign(demo, "users")
    report = verify(demo)
    assert not report.approved
    assert report.approved_by == ("users",)
    assert "quorum not met: 2 of 3 required, have 1: users" in report.summary()
    with pytest.raises(SignatureError, match="quorum not met"):
        require_approved(demo)
    _sign(demo, "operator")
    report = require_approved(demo)
    assert report.approved_by == ("users", "operator")
    assert report.to_dict()["approved"] is True


def test_missing_envelope(demo: Path) -> None:
    report = verify(demo)
    assert not report.approved
    assert "no approval envelope" in report.summary()


def test_second_signature_by_same_stakeholder_is_refused(demo: Path) -> None:
    _sign(demo, "users")
    with pytest.raises(SignatureError, match="'users' has already signed"):
        _sign(demo, "users")


def test_sign_refuses_wrong_key_and_unknown_stakeholder(demo: Path) -> None:
    with pytest.raises(SignatureError, match="not the public_key declared for 'operator'"):
        sign(demo, KEYS / "users.key.pem", "operator", PASS)
    with pytest.raises(SignatureError, match="'auditor' is not a stakeholder"):
        sign(demo, KEYS / "users.key.pem", "auditor", PASS)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        sign(demo, KEYS / "users.key.pem", "users", b"wrong passphrase")
    assert not envelope_path(demo).exists()


def test_sign_refuses_stale_envelope(demo: Path) -> None:
    _sign(demo, "users")
    demo.write_text(demo.read_text().replace("weight: 0.5", "weight: 0.55"))
    with pytest.raises(SignatureError, match="hash mismatch.*delete the stale envelope"):
        _sign(demo, "operator")


def _resign_with(demo: Path, extra: list[Signature]) -> None:
    env = read_envelope(envelope_path(demo))
    write_envelope(envelope_path(demo), Envelope(env.payload_type, env.payload,
                                                 env.signatures + tuple(extra)))


def test_unknown_key_is_named(demo: Path) -> None:
    _sign(demo, "users")
    stranger = Ed25519PrivateKey.generate()
    env = read_envelope(envelope_path(demo))
    kid = key_id(public_key_string(stranger.public_key()))
    _resign_with(demo, [Signature(kid, stranger.sign(env.pae()))])
    report = verify(demo)
    assert not report.approved
    assert f"signature 1 (key {kid[:16]}): unknown key: no stakeholder declares it" in (
        report.summary()
    )


def test_duplicate_stakeholder_counts_once(demo: Path) -> None:
    _sign(demo, "users")
    env = read_envelope(envelope_path(demo))
    _resign_with(demo, [env.signatures[0]])
    report = verify(demo)
    assert report.approved_by == ("users",)
    assert "signature 1 (users): duplicate stakeholder" in report.summary()
    assert "quorum not met: 2 of 3 required, have 1: users" in report.summary()


def test_signature_by_another_key_under_a_declared_keyid_is_bad(demo: Path) -> None:
    _sign(demo, "users")
    env = read_envelope(envelope_path(demo))
    impostor = Ed25519PrivateKey.generate()
    holders = {h.name: h for h in load_contract(demo).spec.stakeholders}
    operator_kid = key_id(holders["operator"].public_key)
    _resign_with(demo, [Signature(operator_kid, impostor.sign(env.pae()))])
    report = verify(demo)
    assert "signature 1 (operator): bad signature" in report.summary()
    assert report.approved_by == ("users",)


def test_wrong_payload_type_and_hand_edits_are_rejected(demo: Path) -> None:
    _sign(demo, "users")
    _sign(demo, "operator")
    path = envelope_path(demo)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc) + "\n")
    assert "edited by hand" in verify(demo).summary()
    env = Envelope("application/json", read_statement_bytes(demo), ())
    write_envelope(path, env)
    assert "payloadType is 'application/json'" in verify(demo).summary()
    path.write_text("{not json")
    assert "not valid JSON" in verify(demo).summary()


def read_statement_bytes(contract: Path) -> bytes:
    return statement_for(load_contract(contract)).to_bytes()


def test_keyless_draft_cannot_be_approved(tmp_path: Path) -> None:
    text = (EXAMPLES / "demo.yaml").read_text()
    draft = "\n".join(line for line in text.splitlines() if "public_key" not in line) + "\n"
    path = tmp_path / "draft.yaml"
    path.write_text(draft)
    report = verify(path)
    assert not report.approved
    assert report.failures == (
        "no stakeholder declares a public_key; add keys (contract keygen), then sign",
    )


def test_pae_matches_dsse_spec() -> None:
    assert pae("t", b"hello") == b"DSSEv1 1 t 5 hello"
    assert PAYLOAD_TYPE == "application/vnd.rlhf-contract-wizard.contract+json"
