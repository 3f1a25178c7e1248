"""Admin approval of access-policy versions: DSSE envelopes signed by a quorum of admins.

A version's statement ``{policy, version, hash, supersedes}`` (canonical JSON) is the DSSE
payload; each approving admin adds an Ed25519 signature over its pre-authentication encoding,
exactly as stakeholders approve a contract (:mod:`rlhf_core.security.approval`). Who may approve
version N is decided by version N-1: its admins, with its quorum. Version 1 (nothing before it)
is approved by a quorum of its own admins; that first step is the trust anchor, which
``RLHF_WIZARD_ACCESS_ANCHOR`` can pin (see :mod:`rlhf_core.security.access.store`).

References:
    DSSE v1 protocol. https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rlhf_core.errors import SignatureError
from rlhf_core.security.access.policy import AccessPolicy
from rlhf_core.security.dsse import Envelope, Signature
from rlhf_core.security.keys import key_id, key_id_of, parse_public_key

PAYLOAD_TYPE = "application/vnd.rlhf-contract-wizard.access-policy+json"

__all__ = ["PAYLOAD_TYPE", "Approval", "check_approval", "statement_bytes", "with_signature"]


def statement_bytes(policy: AccessPolicy) -> bytes:
    """What admins sign: the policy's name, version, hash and the hash it supersedes."""
    return rfc8785.dumps({"policy": policy.policy, "version": policy.version,
                          "hash": policy.hash(), "supersedes": policy.supersedes or ""})


@dataclass(frozen=True)
class Approval:
    """The outcome of :func:`check_approval` for one policy version.

    Attributes:
        version: The policy version checked.
        hash: Its hash.
        quorum: Admin signatures required.
        approvers: Who may approve it (the previous version's admins), by name.
        approved_by: Approvers with a valid signature, in envelope order.
        problems: Why signatures or the envelope do not count.
    """

    version: int
    hash: str
    quorum: int
    approvers: tuple[str, ...]
    approved_by: tuple[str, ...]
    problems: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        """True when the quorum is met."""
        return len(self.approved_by) >= self.quorum

    def summary(self) -> str:
        """One line: approved by whom, or what is missing."""
        have = ", ".join(self.approved_by) or "none"
        if self.approved:
            return f"policy v{self.version} approved by {have} (quorum {self.quorum})"
        extra = f"; {'; '.join(self.problems)}" if self.problems else ""
        return (f"policy v{self.version} not approved: {len(self.approved_by)} of {self.quorum} "
                f"admin signatures ({have}); may approve: {', '.join(self.approvers) or 'nobody'}"
                f"{extra}")


def check_approval(policy: AccessPolicy, envelope: Envelope | None,
                   approvers: Mapping[str, str], quorum: int) -> Approval:
    """Count the valid signatures of ``approvers`` over ``policy``'s statement.

    Args:
        policy: The version being approved.
        envelope: Its DSSE envelope (None: nobody has signed yet).
        approvers: Who may approve: name -> ``ed25519:`` public key.
        quorum: Signatures required.
    """
    base = {"version": policy.version, "hash": policy.hash(), "quorum": quorum,
            "approvers": tuple(approvers)}
    if envelope is None:
        return Approval(approved_by=(), **base)
    problems: list[str] = []
    if envelope.payload_type != PAYLOAD_TYPE:
        return Approval(approved_by=(), problems=(f"payloadType is {envelope.payload_type!r}, "
                                                  f"expected {PAYLOAD_TYPE!r}",), **base)
    if envelope.payload != statement_bytes(policy):
        try:
            signed = json.loads(envelope.payload).get("hash", "?")
        except (ValueError, AttributeError):
            signed = "?"
        return Approval(approved_by=(), problems=(
            f"the envelope approves {signed}, the policy is {policy.hash()}: it changed since "
            "signing",), **base)
    by_kid = {key_id(public): name for name, public in approvers.items()}
    approved: list[str] = []
    message = envelope.pae()
    for i, sig in enumerate(envelope.signatures):
        name = by_kid.get(sig.keyid)
        if name is None:
            problems.append(f"signature {i} by key {sig.keyid[:16]}… is not an approver's")
            continue
        try:
            parse_public_key(approvers[name]).verify(sig.sig, message)
        except InvalidSignature:
            problems.append(f"signature {i} ({name}) does not verify")
            continue
        if name not in approved:
            approved.append(name)
    return Approval(approved_by=tuple(approved), problems=tuple(problems), **base)


def with_signature(policy: AccessPolicy, envelope: Envelope | None, private: Ed25519PrivateKey,
                   approvers: Mapping[str, str]) -> tuple[Envelope, str]:
    """``envelope`` plus one approver's signature; returns it and the approver's name.

    Raises:
        SignatureError: The key is not an approver's (a principal can never approve a version
            with a key the previous version does not give admin rights), or it already signed.
    """
    kid = key_id_of(private.public_key())
    name = next((n for n, public in approvers.items() if key_id(public) == kid), None)
    if name is None:
        raise SignatureError(
            f"key {kid[:16]}… may not approve policy v{policy.version}: only the admins of the "
            f"version before it may ({', '.join(approvers) or 'none'})")
    existing = envelope.signatures if envelope is not None else ()
    if any(sig.keyid == kid for sig in existing):
        raise SignatureError(f"{name} has already signed policy v{policy.version}")
    unsigned = Envelope(PAYLOAD_TYPE, statement_bytes(policy), existing)
    signature = Signature(kid, private.sign(unsigned.pae()))
    return Envelope(PAYLOAD_TYPE, unsigned.payload, (*existing, signature)), name
