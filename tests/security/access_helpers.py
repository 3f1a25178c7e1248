"""Build and install access policies for tests: the shipped template, principals with real keys."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rlhf_core.lake.store import Lake
from rlhf_core.security.access.policy import AccessPolicy, load_policy, policy_yaml
from rlhf_core.security.access.store import PolicyStore
from rlhf_core.security.keys import public_key_string
from tests.conftest import REPO_ROOT

TEMPLATE = REPO_ROOT / "configs" / "access" / "policy.yaml"
ROLES = ("author", "approver", "operator", "auditor", "admin")
PASSPHRASE = "test-passphrase-not-secret"


@cache
def key(name: str) -> Ed25519PrivateKey:
    """One Ed25519 key per principal name, stable within a test session."""
    return Ed25519PrivateKey.generate()


def policy(principals: dict[str, list[str]], *, quorum: int = 1, **tokens: object) -> AccessPolicy:
    """The shipped template (its roles and permissions) with ``principals`` bound to :func:`key`."""
    doc = load_policy(TEMPLATE).model_dump(mode="json")
    doc["quorum"] = quorum
    doc["tokens"].update(tokens)
    doc["principals"] = {name: {"public_key": public_key_string(key(name).public_key()),
                                "roles": roles} for name, roles in principals.items()}
    return AccessPolicy.model_validate(doc)


def install(lake: Lake | Path | str, new: AccessPolicy, signers: list[str]) -> PolicyStore:
    """Stage ``new`` and sign it with each of ``signers``' keys (installed at the quorum)."""
    store = PolicyStore(lake if isinstance(lake, Lake) else Lake(lake))
    store.stage(new, policy_yaml(new), actor=signers[0])
    for name in signers:
        store.sign_pending(key(name))
    return store


def write_key(directory: Path, name: str) -> Path:
    """:func:`key` as an encrypted key file (passphrase :data:`PASSPHRASE`), for the CLI."""
    from cryptography.hazmat.primitives import serialization

    path = directory / f"{name}.key.pem"
    path.write_bytes(key(name).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    path.chmod(0o600)
    return path
