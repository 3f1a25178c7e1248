"""Append-only, hash-chained, Ed25519-signed audit log (``<root>/audit/audit.log``, JSON Lines).

Each line is the RFC 8785 canonical JSON of one entry::

    {seq, timestamp, kind, actor, subject, details, prev_hash, key_id, hash, signature}

``hash`` is the hex SHA-256 of the canonical bytes of the entry *body* (every field except
``hash`` and ``signature``); ``prev_hash`` is the previous entry's ``hash`` (64 zeros for the
first entry); ``signature`` is the operator's Ed25519 signature of the body bytes (base64).
After every append a signed checkpoint (last seq + hash) is rewritten atomically beside the log,
so cutting entries off the tail is detectable. Appends go through
:class:`rlhf_core.lake.append_log.AppendLog`: on a local root they hold an exclusive ``flock``
and write the whole line with one ``O_APPEND`` write followed by ``fsync``; on an S3 root the log
object is replaced by compare-and-swap (``If-Match`` on its ETag), so appenders on any number of
hosts never lose or interleave an entry. On S3 the signing key must come from
``RLHF_WIZARD_OPERATOR_KEY`` (a file on the appending host), never from the shared bucket.
:func:`rlhf_core.security.audit_verify.verify_audit` checks all of it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from rlhf_core.errors import AuditError, KeyFileError
from rlhf_core.lake.append_log import AppendLog
from rlhf_core.lake.catalog import AUDIT_COLUMNS, AUDIT_LOG_PARTS
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.context import active_grant
from rlhf_core.security.operator_key import OPERATOR_KEY_ENV, OperatorKey, load_operator_key

GENESIS_HASH = "0" * 64
CHECKPOINT_TYPE = "rlhf-wizard/audit-checkpoint/v1"
ACTOR_ENV = "RLHF_WIZARD_ACTOR"
KNOWN_KINDS = (
    "contract_validated", "contract_approved", "contract_rejected", "contract_used",
    "run_started", "run_finished", "run_failed", "export_written", "report_written",
    "attestation_written", "key_created", "evaluation_written", "contract_calibrated",
    "access_granted", "access_denied", "policy_proposed", "policy_signed", "policy_installed",
    "token_issued",
    "input_refused", "lake_key_created", "lake_key_rotated",
)
BODY_FIELDS = ("seq", "timestamp", "kind", "actor", "subject", "details", "prev_hash", "key_id")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CHECKPOINT_PARTS = ("audit", "audit.checkpoint.json")

__all__ = [
    "AUDIT_COLUMNS", "GENESIS_HASH", "KNOWN_KINDS", "AuditEntry", "AuditLog", "append_audit", "audit_dir",
    "audit_log_path", "canonical_bytes", "checkpoint_path",
]


def audit_dir(lake: Lake) -> str:
    """``<root>/audit``."""
    return lake.path("audit")


def audit_log_path(lake: Lake) -> str:
    """``<root>/audit/audit.log``."""
    return lake.path(*AUDIT_LOG_PARTS)


def checkpoint_path(lake: Lake) -> str:
    """``<root>/audit/audit.checkpoint.json``: the signed (seq, hash) of the last entry."""
    return lake.path(*CHECKPOINT_PARTS)


def canonical_bytes(value: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes: the form that is hashed and signed."""
    return rfc8785.dumps(dict(value))


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _default_actor() -> str:
    actor = os.environ.get(ACTOR_ENV)
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log entry."""

    seq: int
    timestamp: str
    kind: str
    actor: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    key_id: str = ""
    hash: str = ""
    signature: str = ""

    def body(self) -> dict[str, Any]:
        """The hashed and signed part of the entry."""
        return {name: getattr(self, name) for name in BODY_FIELDS}

    def body_bytes(self) -> bytes:
        """Canonical bytes of :meth:`body`."""
        return canonical_bytes(self.body())

    def to_line(self) -> bytes:
        """The JSON Lines record (canonical JSON + newline)."""
        return canonical_bytes({**self.body(), "hash": self.hash, "signature": self.signature}) + b"\n"

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> AuditEntry:
        """Build an entry from a parsed line (raises KeyError/TypeError on a malformed record)."""
        values = {name: record[name] for name in (*BODY_FIELDS, "hash", "signature")}
        if not isinstance(values["seq"], int) or not isinstance(values["details"], dict):
            raise TypeError("seq must be an integer and details an object")
        for name in ("timestamp", "kind", "actor", "subject", "prev_hash", "key_id", "hash", "signature"):
            if not isinstance(values[name], str):
                raise TypeError(f"{name} must be a string")
        return cls(**values)


def _sealed(entry: AuditEntry, key: OperatorKey) -> AuditEntry:
    body = entry.body_bytes()
    return AuditEntry(**{**entry.body(), "hash": hashlib.sha256(body).hexdigest(),
                         "signature": key.sign(body)})


class AuditLog:
    """The lake's audit log.

    Args:
        lake: The lake (or its root) whose ``audit/`` directory holds the log: a local directory
            or an ``s3://`` root.

    Attributes:
        path: The log: a :class:`~pathlib.Path` on a local root, its URI on S3.
        checkpoint: The signed checkpoint, likewise.

    Raises:
        LakeError: If the root is on an object store other than S3.
    """

    def __init__(self, lake: Lake | str | os.PathLike[str] | None = None) -> None:
        self.lake = lake if isinstance(lake, Lake) else Lake(lake)
        self.log = AppendLog(self.lake, AUDIT_LOG_PARTS, CHECKPOINT_PARTS)
        if self.log.local:
            self.path: Path | str = Path(audit_log_path(self.lake))
            self.checkpoint: Path | str = Path(checkpoint_path(self.lake))
        else:
            self.path = self.lake.uri(audit_log_path(self.lake))
            self.checkpoint = self.lake.uri(checkpoint_path(self.lake))
        self._key: OperatorKey | None = None

    def _operator_key(self) -> OperatorKey:
        # Loaded once per AuditLog: decrypting an encrypted PKCS#8 key runs a slow KDF.
        if self._key is None:
            if not self.log.local and not os.environ.get(OPERATOR_KEY_ENV):
                raise KeyFileError(
                    f"the audit log of {self.lake.root} is on shared object storage: set "
                    f"{OPERATOR_KEY_ENV} to the operator's encrypted key file on this host (and "
                    "RLHF_WIZARD_KEY_PASSPHRASE); create one with `rlhf-wizard contract keygen`")
            self._key = load_operator_key(self.lake)
        return self._key

    def read_bytes(self) -> bytes:
        """The whole log as stored (empty if nothing was appended yet)."""
        return self.log.read()

    def read_checkpoint(self) -> bytes | None:
        """The signed checkpoint as stored, or None if there is none."""
        return self.log.read_sidecar()

    def append(
        self,
        kind: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> AuditEntry:
        """Append one signed entry and update the signed checkpoint.

        Args:
            kind: What happened, e.g. ``contract_approved``, ``run_started`` (see KNOWN_KINDS;
                any ``[a-z][a-z0-9_]*`` name is accepted).
            subject: What it happened to (run id, contract hash, file path).
            details: JSON-serialisable context (no NaN/Infinity).
            actor: Who did it; by default the principal of the active access grant
                (:func:`rlhf_core.security.access.context.active_grant`, whose role is added to
                ``details`` as ``role``), else ``$RLHF_WIZARD_ACTOR`` or the OS user (open mode:
                no access policy installed, entries exactly as before policies existed).

        Returns:
            The appended entry.

        Raises:
            AuditError: On an invalid kind or details, or a damaged last line.
            KeyFileError: If the operator key cannot be loaded.
        """
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise AuditError(f"invalid audit kind {kind!r}: use snake_case such as {KNOWN_KINDS[0]}")
        try:
            plain_details = json.loads(json.dumps(dict(details or {}), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit details for {kind} {subject}: not JSON-serialisable ({exc})") from exc
        grant = active_grant()
        if grant is not None and not grant.open and actor in (None, grant.principal):
            actor = grant.principal
            plain_details.setdefault("role", grant.role)
        key = self._operator_key()
        sealed: list[AuditEntry] = []

        def seal(last: bytes | None) -> tuple[bytes, bytes]:
            seq, prev_hash = self._tail(last)
            entry = _sealed(AuditEntry(seq=seq, timestamp=_utc_now(), kind=kind,
                                       actor=actor or _default_actor(), subject=str(subject),
                                       details=plain_details, prev_hash=prev_hash,
                                       key_id=key.key_id), key)
            sealed.append(entry)
            return entry.to_line(), _checkpoint(entry, key)

        self.log.append(seal, supersedes=_checkpoint_is_newer)
        return sealed[-1]

    def _tail(self, line: bytes | None) -> tuple[int, str]:
        """The next entry's seq and prev_hash, from the log's last line as stored."""
        if line is None:
            return 0, GENESIS_HASH
        if not line.endswith(b"\n"):
            raise AuditError(f"{self.path}: the last line is incomplete (a write was cut short or "
                             "the file was edited); run `rlhf-wizard audit verify` before appending")
        try:
            last = json.loads(line)
            return int(last["seq"]) + 1, str(last["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{self.path}: the last entry is not valid ({exc}); run "
                             "`rlhf-wizard audit verify` before appending") from exc

    def entries(self) -> list[AuditEntry]:
        """All entries in file order (raises AuditError on a malformed line; see verify)."""
        entries = []
        lines = self.read_bytes().split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for number, line in enumerate(lines, start=1):
            try:
                entries.append(AuditEntry.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                name = posixpath.basename(str(self.path).split("?", 1)[0])
                raise AuditError(f"{name} line {number}: not a valid audit entry "
                                 f"({exc}); run `rlhf-wizard audit verify`") from exc
        return entries


def _checkpoint(entry: AuditEntry, key: OperatorKey) -> bytes:
    """The signed checkpoint recording ``entry`` as the last one."""
    body = {"type": CHECKPOINT_TYPE, "seq": entry.seq, "hash": entry.hash,
            "timestamp": entry.timestamp, "key_id": key.key_id}
    return canonical_bytes({**body, "signature": key.sign(canonical_bytes(body))}) + b"\n"


def _checkpoint_is_newer(new: bytes, current: bytes) -> bool:
    """Racing appenders on S3 replace the checkpoint only with a later one (an unreadable
    current checkpoint is replaced; verify reports what it was)."""
    try:
        return int(json.loads(new)["seq"]) > int(json.loads(current)["seq"])
    except (ValueError, KeyError, TypeError):
        return True


def append_audit(
    kind: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    *,
    actor: str | None = None,
    lake: Lake | None = None,
) -> AuditEntry:
    """Append one entry to the audit log of ``lake`` (``RLHF_WIZARD_HOME`` by default).

    Example: ``append_audit("run_started", run_id, {"flow": "score-responses"})``.
    See :meth:`AuditLog.append`.
    """
    return AuditLog(lake).append(kind, subject, details, actor=actor)
