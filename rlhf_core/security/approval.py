"""Stakeholder approval of contracts: add one signature, verify signatures and the quorum.

A signature binds the statement ``{contract, version, hash, file_digest}``: the canonical hash
(the contract's meaning) and the digest of the exact file bytes (the text stakeholders read).
A contract is approved when at least ``approval.quorum`` distinct declared stakeholders have a
valid signature over the current statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature

from rlhf_core.contract.build import LoadedContract, load_contract
from rlhf_core.contract.hashing import file_digest
from rlhf_core.contract.numeric_risk import blocking_nan_risks, refusal
from rlhf_core.errors import ContractError, SignatureError
from rlhf_core.security.dsse import (
    PAYLOAD_TYPE,
    Envelope,
    Signature,
    Statement,
    decode_statement,
    envelope_path,
    read_envelope,
    write_envelope,
)
from rlhf_core.security.keys import (
    key_id,
    load_private_key,
    parse_public_key,
    public_key_string,
    resolve_passphrase,
)


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome for one signature in the envelope.

    Attributes:
        index: Position in the envelope's signature list.
        keyid: The signature's key id.
        stakeholder: The declared stakeholder owning that key (None when unknown).
        valid: Whether it counts towards the quorum.
        reason: Why it does not count (empty when valid).
    """

    index: int
    keyid: str
    stakeholder: str | None
    valid: bool
    reason: str = ""


@dataclass(frozen=True)
class ApprovalReport:
    """Result of :func:`verify`.

    Attributes:
        contract: Contract name.
        hash: The contract's current canonical hash.
        envelope: Path of the envelope that was checked.
        quorum: Signatures required.
        keyed: Number of stakeholders that declare a public key.
        approved_by: Stakeholders with a valid signature, in envelope order.
        checks: One entry per signature.
        problems: Envelope-level failures (missing, corrupt, stale statement).
    """

    contract: str
    hash: str
    envelope: str
    quorum: int
    keyed: int
    approved_by: tuple[str, ...]
    checks: tuple[SignatureCheck, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def approved(self) -> bool:
        """True when no envelope problem exists and the quorum is met."""
        return not self.problems and len(self.approved_by) >= self.quorum

    @property
    def failures(self) -> tuple[str, ...]:
        """One line per failure: envelope problems, bad signatures, then the quorum."""
        lines = list(self.problems)
        for check in self.checks:
            if not check.valid:
                who = check.stakeholder or f"key {check.keyid[:16]}"
                lines.append(f"signature {check.index} ({who}): {check.reason}")
        if self.keyed and len(self.approved_by) < self.quorum:
            have = ", ".join(self.approved_by) or "none"
            lines.append(
                f"quorum not met: {self.quorum} of {self.keyed} required, "
                f"have {len(self.approved_by)}: {have}"
            )
        return tuple(lines)

    def summary(self) -> str:
        """One line: approved by whom, or every failure joined by '; '."""
        if self.approved:
            return (
                f"{self.contract} {self.hash} approved by {len(self.approved_by)} "
                f"(quorum {self.quorum}): {', '.join(self.approved_by)}"
            )
        return f"{self.contract} not approved: " + "; ".join(self.failures)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (for ``--json`` output and reports)."""
        return {
            "contract": self.contract,
            "hash": self.hash,
            "envelope": self.envelope,
            "approved": self.approved,
            "quorum": self.quorum,
            "keyed_stakeholders": self.keyed,
            "approved_by": list(self.approved_by),
            "signatures": [check.__dict__ for check in self.checks],
            "failures": list(self.failures),
        }


def statement_for(contract: LoadedContract) -> Statement:
    """The statement stakeholders sign for the contract as it is now."""
    return Statement(contract.spec.contract, contract.spec.version, contract.hash,
                     file_digest(contract.text))


def _declared_keys(contract: LoadedContract) -> dict[str, tuple[str, str]]:
    """keyid -> (stakeholder, public key) for every stakeholder declaring a key."""
    return {
        key_id(h.public_key): (h.name, h.public_key)
        for h in contract.spec.stakeholders
        if h.public_key is not None
    }


def _statement_problem(statement: Statement, current: Statement) -> str | None:
    if statement.hash != current.hash:
        return (
            f"hash mismatch: the envelope approves {statement.hash} but the contract is now "
            f"{current.hash}; its meaning changed since signing, collect new signatures"
        )
    if statement.file_digest != current.file_digest:
        return (
            "file changed since signing (same canonical hash: only formatting or comments "
            "differ); re-sign to approve the exact text"
        )
    if (statement.contract, statement.version) != (current.contract, current.version):
        return (
            f"statement names {statement.contract} {statement.version}, the file is "
            f"{current.contract} {current.version}"
        )
    return None


def verify(contract_path: str | Path, contract: LoadedContract | None = None) -> ApprovalReport:
    """Check every signature of a contract's envelope and the quorum.

    Args:
        contract_path: The contract YAML file (the envelope sits beside it).
        contract: The already-loaded contract, to avoid loading it twice.

    Returns:
        The report; ``report.approved`` says whether the contract may be used.

    Raises:
        ContractError: The contract itself does not load (see :func:`load_contract`).
    """
    contract = contract or load_contract(contract_path)
    declared = _declared_keys(contract)
    env_path = envelope_path(contract_path)
    base = {
        "contract": contract.spec.contract,
        "hash": contract.hash,
        "envelope": str(env_path),
        "quorum": contract.spec.approval.quorum,
        "keyed": len(declared),
    }
    if not declared:
        problem = "no stakeholder declares a public_key; add keys (contract keygen), then sign"
        return ApprovalReport(approved_by=(), problems=(problem,), **base)
    try:
        envelope = read_envelope(env_path)
        statement = decode_statement(envelope, env_path)
    except SignatureError as exc:
        return ApprovalReport(approved_by=(), problems=(str(exc),), **base)
    problem = _statement_problem(statement, statement_for(contract))
    if problem is not None:
        return ApprovalReport(approved_by=(), problems=(problem,), **base)
    message = envelope.pae()
    approved: list[str] = []
    checks = []
    for i, sig in enumerate(envelope.signatures):
        owner = declared.get(sig.keyid)
        if owner is None:
            checks.append(SignatureCheck(i, sig.keyid, None, False,
                                         "unknown key: no stakeholder declares it"))
            continue
        name, public = owner
        try:
            parse_public_key(public).verify(sig.sig, message)
        except InvalidSignature:
            checks.append(SignatureCheck(i, sig.keyid, name, False,
                                         "bad signature: does not verify with the declared key"))
            continue
        if name in approved:
            checks.append(SignatureCheck(i, sig.keyid, name, False,
                                         "duplicate stakeholder: already signed, counted once"))
            continue
        approved.append(name)
        checks.append(SignatureCheck(i, sig.keyid, name, True))
    return ApprovalReport(approved_by=tuple(approved), checks=tuple(checks), **base)


def require_approved(contract_path: str | Path, contract: LoadedContract | None = None) -> ApprovalReport:
    """:func:`verify`, raising when the contract is not approved.

    Raises:
        SignatureError: With the report's one-line summary of every failure.
    """
    report = verify(contract_path, contract)
    if not report.approved:
        raise SignatureError(f"{contract_path}: {report.summary()}")
    return report


def sign(
    contract_path: str | Path,
    key_path: str | Path,
    stakeholder: str,
    passphrase: bytes | None = None,
) -> ApprovalReport:
    """Add one stakeholder's signature to the contract's envelope (created if absent).

    Args:
        contract_path: The contract YAML file.
        key_path: The stakeholder's encrypted private key file.
        stakeholder: The declared stakeholder name signing.
        passphrase: Passphrase of the private key (default: ``RLHF_WIZARD_KEY_PASSPHRASE``
            or a prompt, see :func:`rlhf_core.security.keys.resolve_passphrase`).

    Returns:
        The approval report after signing.

    Raises:
        SignatureError: Undeclared stakeholder or one without a public key, a key that does
            not match the declared one, a second signature by the same stakeholder, or an
            envelope that approves an older version of the contract.
        KeyFileError: The key file cannot be read or decrypted.
        ContractError: A utility, the penalty or the reward can be NaN or infinite over the
            declared input ranges (a confirmed ``nan_risk``) and the contract does not declare
            ``acknowledge: [nan_risk]`` (docs/contracts.md#nan-and-infinity-lint).
    """
    contract = load_contract(contract_path)
    risks = blocking_nan_risks(contract.program)
    if risks:
        raise ContractError(f"{contract_path}: " + refusal(risks, "refusing to sign"))
    holders = {h.name: h for h in contract.spec.stakeholders}
    holder = holders.get(stakeholder)
    if holder is None:
        raise SignatureError(
            f"{contract_path}: '{stakeholder}' is not a stakeholder; declared: {', '.join(holders)}"
        )
    if holder.public_key is None:
        raise SignatureError(
            f"{contract_path}: stakeholder '{stakeholder}' declares no public_key; add it first"
        )
    private = load_private_key(key_path, passphrase or resolve_passphrase())
    if public_key_string(private.public_key()) != holder.public_key:
        raise SignatureError(
            f"{key_path}: this key is not the public_key declared for '{stakeholder}'"
        )
    statement = statement_for(contract)
    env_path = envelope_path(contract_path)
    signatures: tuple[Signature, ...] = ()
    if env_path.exists():
        existing = read_envelope(env_path)
        problem = _statement_problem(decode_statement(existing, env_path), statement)
        if problem is not None:
            raise SignatureError(
                f"{env_path}: {problem}; delete the stale envelope to start a new approval round"
            )
        signatures = existing.signatures
    keyid = key_id(holder.public_key)
    if any(sig.keyid == keyid for sig in signatures):
        raise SignatureError(f"{env_path}: stakeholder '{stakeholder}' has already signed")
    unsigned = Envelope(PAYLOAD_TYPE, statement.to_bytes(), signatures)
    new_sig = Signature(keyid, private.sign(unsigned.pae()))
    write_envelope(env_path, Envelope(PAYLOAD_TYPE, statement.to_bytes(), signatures + (new_sig,)))
    return verify(contract_path, contract)
