"""The installed access policy of a lake, its history and the pending version awaiting admins.

Layout under the lake root (local or any pyarrow filesystem URI)::

    access/current.json              {"version": N, "hash": "sha256:..."}: the active version
    access/versions/v000001.yaml     every approved version, as signed
    access/versions/v000001.dsse.json
    access/pending.yaml              the proposed next version, and its signatures so far
    access/pending.dsse.json

Installing a version writes its two files first and then replaces ``current.json`` atomically,
so readers see the old or the new policy, never a mix. Every read verifies the whole chain:
version 1 approved by a quorum of its own admins, each later version by a quorum of the admins
of the version before it, each naming its predecessor's hash. ``RLHF_WIZARD_ACCESS_ANCHOR``
(the hash of version 1, kept in the workers' environment rather than in the lake) pins the
chain's start, so whoever can write the lake can neither forge a new chain nor delete the policy
to fall back to open mode.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass
from functools import lru_cache

import pyarrow.fs as pafs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rlhf_core.errors import ConfigError, SignatureError
from rlhf_core.lake.fs import write_bytes_atomic
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.approval import Approval, check_approval, with_signature
from rlhf_core.security.access.policy import ADMIN_PERMISSION, AccessPolicy, parse_policy
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.dsse import Envelope, parse_envelope

ANCHOR_ENV = "RLHF_WIZARD_ACCESS_ANCHOR"
ACCESS_DIR = "access"

__all__ = ["ANCHOR_ENV", "InstalledPolicy", "PendingPolicy", "PolicyStore"]


@dataclass(frozen=True)
class InstalledPolicy:
    """The active, verified policy version.

    Attributes:
        policy: The policy.
        hash: Its hash.
        approval: Who approved it and with which quorum.
        anchored: Whether ``RLHF_WIZARD_ACCESS_ANCHOR`` pinned the chain's first version.
        genesis: The hash of version 1 (the value to pin).
    """

    policy: AccessPolicy
    hash: str
    approval: Approval
    anchored: bool
    genesis: str

    @property
    def version(self) -> int:
        """The active version number."""
        return self.policy.version


@dataclass(frozen=True)
class PendingPolicy:
    """The proposed next version and the state of its approval."""

    policy: AccessPolicy
    approval: Approval


@lru_cache(maxsize=64)
def _parsed(text: str, where: str) -> AccessPolicy:
    """Installed versions never change: every check re-reads the chain, parsed once per text."""
    return parse_policy(text, where)


class PolicyStore:
    """Read, propose, sign and install the access policy of one lake."""

    def __init__(self, lake: Lake | str | None = None) -> None:
        self.lake = lake if isinstance(lake, Lake) else Lake(lake)

    # -- files -----------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return self.lake.path(ACCESS_DIR, *parts)

    def _read(self, path: str) -> str | None:
        if self.lake.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.lake.fs.open_input_stream(path) as handle:
            return handle.read().decode("utf-8")

    def _write(self, path: str, text: str) -> None:
        self.lake.fs.create_dir(posixpath.dirname(path), recursive=True)
        write_bytes_atomic(self.lake.fs, path, text.encode("utf-8"))

    def _delete(self, path: str) -> None:
        if self.lake.fs.get_file_info(path).type == pafs.FileType.File:
            self.lake.fs.delete_file(path)

    def _version_paths(self, version: int) -> tuple[str, str]:
        stem = f"v{version:06d}"
        return self._path("versions", f"{stem}.yaml"), self._path("versions", f"{stem}.dsse.json")

    def _envelope(self, path: str) -> Envelope | None:
        text = self._read(path)
        return None if text is None else parse_envelope(text, self.lake.uri(path))

    # -- reading ---------------------------------------------------------------------------

    def is_installed(self) -> bool:
        """Whether a policy is installed (without verifying it)."""
        return self._read(self._path("current.json")) is not None

    def installed(self) -> InstalledPolicy | None:
        """The active policy after verifying the whole chain; None in open mode.

        Raises:
            SignatureError: A version is missing, edited, not approved by its approvers, does not
                name its predecessor, or the chain does not start at the pinned anchor (or the
                anchor is pinned and no policy is installed).
        """
        anchor = os.environ.get(ANCHOR_ENV) or None
        pointer_path = self._path("current.json")
        pointer = self._read(pointer_path)
        if pointer is None:
            if anchor:
                raise SignatureError(
                    f"{ANCHOR_ENV} pins access policy {anchor} but {self.lake.root} has no "
                    "installed policy (access/current.json is missing): it was removed; restore "
                    "the access/ folder from backup")
            return None
        try:
            head = json.loads(pointer)
            count, head_hash = int(head["version"]), str(head["hash"])
        except (ValueError, KeyError, TypeError):
            raise SignatureError(f"{self.lake.uri(pointer_path)}: unreadable; restore the access/ "
                                 "folder from backup") from None
        previous: AccessPolicy | None = None
        approval: Approval | None = None
        genesis = ""
        for version in range(1, count + 1):
            policy, approval = self._verified_version(version, previous)
            if version == 1:
                genesis = policy.hash()
                if anchor and genesis != anchor:
                    raise SignatureError(f"access policy v1 is {genesis}, but {ANCHOR_ENV} pins "
                                         f"{anchor}: the policy chain was replaced")
            previous = policy
        if previous is None or approval is None or previous.hash() != head_hash:
            raise SignatureError(f"{self.lake.uri(pointer_path)} names {head_hash}, the chain ends "
                                 "elsewhere; restore the access/ folder from backup")
        return InstalledPolicy(previous, head_hash, approval, anchored=anchor is not None,
                               genesis=genesis)

    def _verified_version(self, version: int,
                          previous: AccessPolicy | None) -> tuple[AccessPolicy, Approval]:
        yaml_path, envelope_path = self._version_paths(version)
        where = self.lake.uri(yaml_path)
        text = self._read(yaml_path)
        if text is None:
            raise SignatureError(f"{where}: policy version {version} is missing from the chain")
        try:
            policy = _parsed(text, where)
        except ConfigError as exc:
            raise SignatureError(f"installed policy version {version} does not load: {exc}") from None
        if policy.version != version:
            raise SignatureError(f"{where}: declares version {policy.version}, stored as {version}")
        if previous is not None and policy.supersedes != previous.hash():
            raise SignatureError(f"{where}: supersedes {policy.supersedes}, but version "
                                 f"{version - 1} is {previous.hash()}")
        approvers = (previous or policy).admins()
        quorum = (previous or policy).quorum
        approval = check_approval(policy, self._envelope(envelope_path), approvers, quorum)
        if not approval.approved:
            raise SignatureError(f"installed {approval.summary()}; nothing may act until admins "
                                 "restore or re-approve it")
        return policy, approval

    def pending(self) -> PendingPolicy | None:
        """The proposed next version with its approval so far, or None."""
        text = self._read(self._path("pending.yaml"))
        if text is None:
            return None
        policy = parse_policy(text, self.lake.uri(self._path("pending.yaml")))
        base = self.installed()
        approver_policy = base.policy if base else policy
        approval = check_approval(policy, self._envelope(self._path("pending.dsse.json")),
                                  approver_policy.admins(), approver_policy.quorum)
        return PendingPolicy(policy, approval)

    # -- changing --------------------------------------------------------------------------

    def stage(self, policy: AccessPolicy, text: str, *, actor: str,
              role: str | None = None) -> PendingPolicy:
        """Propose ``policy`` (its YAML ``text``) as the next version; earlier signatures of a
        previous proposal are discarded.

        Raises:
            ConfigError: The version does not follow the installed one, does not name its hash,
                or has fewer admins than its own quorum (no later change could be approved).
        """
        base = self.installed()
        expected = base.version + 1 if base else 1
        where = self.lake.uri(self._path("pending.yaml"))
        if policy.version != expected or policy.supersedes != (base.hash if base else None):
            raise ConfigError(
                f"a proposal must be version {expected} superseding "
                f"{base.hash if base else 'nothing'}; got version {policy.version} superseding "
                f"{policy.supersedes}", where)
        if len(policy.admins()) < policy.quorum:
            raise ConfigError(
                f"policy v{policy.version} has {len(policy.admins())} admin(s) for a quorum of "
                f"{policy.quorum}: no later version could ever be approved; add admins or lower "
                "the quorum", where)
        self._delete(self._path("pending.dsse.json"))
        self._write(self._path("pending.yaml"), text)
        details = {"version": policy.version, "supersedes": policy.supersedes}
        AuditLog(self.lake).append("policy_proposed", policy.hash(),
                                   {**details, "role": role} if role else details, actor=actor)
        pending = self.pending()
        if pending is None:  # pragma: no cover - just written
            raise SignatureError(f"{where}: the proposal vanished while it was written")
        return pending

    def sign_pending(self, private: Ed25519PrivateKey) -> tuple[PendingPolicy, bool]:
        """Add an approver's signature to the pending version; install it once the quorum is met.

        Returns:
            The pending version with its approval after signing, and whether it was installed.

        Raises:
            SignatureError: No pending version, or a key that may not approve it.
        """
        pending = self.pending()
        if pending is None:
            raise SignatureError(f"{self.lake.root} has no pending access-policy version; propose "
                                 "one with `rlhf-wizard access init|grant|revoke`")
        base = self.installed()
        approver_policy = base.policy if base else pending.policy
        envelope, signer = with_signature(
            pending.policy, self._envelope(self._path("pending.dsse.json")), private,
            approver_policy.admins())
        self._write(self._path("pending.dsse.json"), envelope.to_json())
        approval = check_approval(pending.policy, envelope, approver_policy.admins(),
                                  approver_policy.quorum)
        audit = AuditLog(self.lake)
        role = approver_policy.role_for(signer, ADMIN_PERMISSION)
        audit.append("policy_signed", pending.policy.hash(),
                     {"version": pending.policy.version, "role": role}, actor=signer)
        if approval.approved:
            self._install(pending.policy, envelope)
            audit.append("policy_installed", pending.policy.hash(), {
                "version": pending.policy.version, "approved_by": list(approval.approved_by),
                "role": role}, actor=signer)
        return PendingPolicy(pending.policy, approval), approval.approved

    def _install(self, policy: AccessPolicy, envelope: Envelope) -> None:
        text = self._read(self._path("pending.yaml")) or ""
        yaml_path, envelope_path = self._version_paths(policy.version)
        self._write(yaml_path, text)
        self._write(envelope_path, envelope.to_json())
        self._write(self._path("current.json"),
                    json.dumps({"version": policy.version, "hash": policy.hash()}) + "\n")
        self._delete(self._path("pending.dsse.json"))
        self._delete(self._path("pending.yaml"))

    def discard_pending(self) -> bool:
        """Remove the pending version and its signatures; True if there was one."""
        had = self._read(self._path("pending.yaml")) is not None
        self._delete(self._path("pending.dsse.json"))
        self._delete(self._path("pending.yaml"))
        return had
