"""Append-only, hash-chained, Ed25519-signed audit log (``<root>/audit/audit.log``, JSON Lines).

Each line is the RFC 8785 canonical JSON of one entry::

    {seq, timestamp, kind, actor, subject, details, prev_hash, key_id, hash, signature}

``hash`` is the hex SHA-256 of the canonical bytes of the entry *body* (every field except
``hash`` and ``signature``); ``prev_hash`` is the previous entry's ``hash`` (64 zeros for the
first entry); ``signature`` is the operator's Ed25519 signature of the body bytes (base64).
After every append a signed checkpoint (last seq + hash) is rewritten atomically beside the log,
so cutting entries off the tail is detectable. Appends hold an exclusive ``flock`` and write the
whole line with one ``O_APPEND`` write followed by ``fsync``, so concurrent processes never
interleave. :func:`rlhf_core.security.audit_verify.verify_audit` checks all of it.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import rfc8785

from rlhf_core.errors import AuditError, LakeError
from rlhf_core.lake.catalog import AUDIT_COLUMNS, AUDIT_LOG_PARTS
from rlhf_core.lake.fs import is_local, write_bytes_atomic
from rlhf_core.lake.store import Lake
from rlhf_core.security.operator_key import OperatorKey, load_operator_key

GENESIS_HASH = "0" * 64
CHECKPOINT_TYPE = "rlhf-wizard/audit-checkpoint/v1"
ACTOR_ENV = "RLHF_WIZARD_ACTOR"
KNOWN_KINDS = (
    "contract_validated", "contract_approved", "contract_rejected", "contract_used",
    "run_started", "run_finished", "run_failed", "export_written", "report_written",
    "attestation_written", "key_created", "evaluation_written", "contract_calibrated",
)
BODY_FIELDS = ("seq", "timestamp", "kind", "actor", "subject", "details", "prev_hash", "key_id")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TAIL_CHUNK = 65536

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
    return lake.path("audit", "audit.checkpoint.json")


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


def _last_line(path: Path) -> tuple[bytes | None, int]:
    """The last complete line of ``path`` (without newline) and the file size."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None, 0
        handle.seek(size - 1)
        if handle.read(1) != b"\n":
            raise AuditError(f"{path}: the last line is incomplete (a write was cut short or "
                             "the file was edited); run `rlhf-wizard audit verify` before appending")
        end, buffer = size - 1, b""
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            handle.seek(start)
            buffer = handle.read(end - start) + buffer
            newline = buffer.rfind(b"\n")
            if newline >= 0:
                return buffer[newline + 1:], size
            end = start
        return buffer, size


class AuditLog:
    """The lake's audit log.

    Args:
        lake: The lake (or its root) whose ``audit/`` directory holds the log (local only, since
            appends need ``flock``, ``O_APPEND`` and ``fsync``).
    """

    def __init__(self, lake: Lake | str | os.PathLike[str] | None = None) -> None:
        self.lake = lake if isinstance(lake, Lake) else Lake(lake)
        if not is_local(self.lake.fs):
            raise LakeError(f"the audit log needs a local lake root, got {self.lake.root}; set "
                            "RLHF_WIZARD_HOME to a local directory for audit logging")
        self.path = Path(audit_log_path(self.lake))
        self.checkpoint = Path(checkpoint_path(self.lake))
        self._lock_path = self.path.with_name("audit.lock")
        self._key: OperatorKey | None = None

    def _operator_key(self) -> OperatorKey:
        # Loaded once per AuditLog: decrypting an encrypted PKCS#8 key runs a slow KDF.
        if self._key is None:
            self._key = load_operator_key(self.lake)
        return self._key

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

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
            actor: Who did it; ``$RLHF_WIZARD_ACTOR`` or the OS user by default.

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
        with self._locked():
            key = self._operator_key()
            seq, prev_hash = self._tail()
            entry = _sealed(AuditEntry(seq=seq, timestamp=_utc_now(), kind=kind,
                                       actor=actor or _default_actor(), subject=str(subject),
                                       details=plain_details, prev_hash=prev_hash,
                                       key_id=key.key_id), key)
            self._append_line(entry.to_line())
            self._write_checkpoint(entry, key)
        return entry

    def _tail(self) -> tuple[int, str]:
        if not self.path.exists():
            return 0, GENESIS_HASH
        line, _ = _last_line(self.path)
        if line is None:
            return 0, GENESIS_HASH
        try:
            last = json.loads(line)
            return int(last["seq"]) + 1, str(last["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{self.path}: the last entry is not valid ({exc}); run "
                             "`rlhf-wizard audit verify` before appending") from exc

    def _append_line(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise AuditError(f"{self.path}: short write ({written} of {len(line)} bytes); "
                                 "check free space, then run `rlhf-wizard audit verify`")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_checkpoint(self, entry: AuditEntry, key: OperatorKey) -> None:
        body = {"type": CHECKPOINT_TYPE, "seq": entry.seq, "hash": entry.hash,
                "timestamp": entry.timestamp, "key_id": key.key_id}
        record = {**body, "signature": key.sign(canonical_bytes(body))}
        write_bytes_atomic(pafs.LocalFileSystem(), str(self.checkpoint), canonical_bytes(record) + b"\n")

    def entries(self) -> list[AuditEntry]:
        """All entries in file order (raises AuditError on a malformed line; see verify)."""
        if not self.path.exists():
            return []
        entries = []
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    entries.append(AuditEntry.from_json(json.loads(line)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise AuditError(f"{self.path.name} line {number}: not a valid audit entry "
                                     f"({exc}); run `rlhf-wizard audit verify`") from exc
        return entries


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
