"""Verify the audit log: hashes, signatures, sequence, hash chain and the signed checkpoint.

Every problem is reported with its place (``audit.log line 7 (seq 6): ...``) and the likely
cause (an entry edited, removed, reordered, forged, or the tail cut off).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rlhf_core.errors import AuditError
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import (
    BODY_FIELDS,
    CHECKPOINT_TYPE,
    GENESIS_HASH,
    AuditEntry,
    AuditLog,
    canonical_bytes,
)
from rlhf_core.security.operator_key import trusted_operator_keys

__all__ = ["AuditProblem", "AuditReport", "verify_audit"]


@dataclass(frozen=True)
class AuditProblem:
    """One verification failure and where it is."""

    message: str
    line: int | None = None
    seq: int | None = None
    file: str = "audit.log"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"{where}: {self.message}"


@dataclass
class AuditReport:
    """The outcome of :func:`verify_audit`."""

    path: str
    entries: int = 0
    last_seq: int | None = None
    last_hash: str | None = None
    checkpoint_seq: int | None = None
    problems: list[AuditProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise AuditError naming the first problem (and how many there are)."""
        if self.problems:
            more = f" (+{len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
            raise AuditError(f"audit log {self.path} failed verification: {self.problems[0]}{more}")


def _signature_ok(keys: Mapping[str, Ed25519PublicKey], key_id: str, signature: str, data: bytes) -> str | None:
    """None if valid, else the reason."""
    public = keys.get(key_id)
    if public is None:
        return (f"signed by unknown key id {key_id[:16]}…, not a trusted operator key — forged "
                "entry or wrong key (pass the operator's public key with --pubkey)")
    try:
        raw = base64.b64decode(signature, validate=True)
        if base64.b64encode(raw).decode("ascii") != signature:
            raise ValueError("non-canonical base64")
        public.verify(raw, data)
    except (InvalidSignature, binascii.Error, ValueError):
        return f"signature does not verify with operator key {key_id[:16]}… — forged or altered entry"
    return None


def _check_entry(entry: AuditEntry, keys: Mapping[str, Ed25519PublicKey]) -> list[str]:
    problems = []
    if hashlib.sha256(entry.body_bytes()).hexdigest() != entry.hash:
        problems.append(f"entry hash does not match its content — entry {entry.seq} was edited")
    reason = _signature_ok(keys, entry.key_id, entry.signature, entry.body_bytes())
    if reason:
        problems.append(reason)
    return problems


def _check_link(entry: AuditEntry, prev: AuditEntry | None, first: bool) -> list[str]:
    problems = []
    if first:
        if entry.seq != 0:
            removed = "entry 0 was" if entry.seq == 1 else f"entries 0..{entry.seq - 1} were"
            problems.append(f"the log starts at seq {entry.seq}, expected 0 — {removed} removed "
                            "from the head")
        elif entry.prev_hash != GENESIS_HASH:
            problems.append("first entry's prev_hash is not the genesis hash — the head was replaced")
        return problems
    if prev is None:  # the previous line was unreadable; its problem is already reported
        return problems
    if entry.seq > prev.seq + 1:
        missing = (f"entry {prev.seq + 1}" if entry.seq == prev.seq + 2
                   else f"entries {prev.seq + 1}..{entry.seq - 1}")
        problems.append(f"seq {entry.seq} follows seq {prev.seq} — {missing} removed or moved")
    elif entry.seq <= prev.seq:
        problems.append(f"seq {entry.seq} follows seq {prev.seq} — entries were reordered or duplicated")
    if entry.prev_hash != prev.hash:
        problems.append(f"prev_hash does not match entry {prev.seq} (line above) — entry "
                        f"{prev.seq} was edited, or an entry was removed or moved between them")
    return problems


def _read_checkpoint(log: AuditLog, keys: Mapping[str, Ed25519PublicKey],
                     report: AuditReport) -> dict[str, Any] | None:
    name = posixpath.basename(str(log.checkpoint).split("?", 1)[0])
    stored = log.read_checkpoint()
    if stored is None:
        if report.entries:
            report.problems.append(AuditProblem(
                "signed checkpoint is missing — it was deleted, so tail truncation cannot be "
                "ruled out; restore it from backup", file=name))
        return None
    try:
        record = json.loads(stored)
        body = {k: record[k] for k in ("type", "seq", "hash", "timestamp", "key_id")}
        signature = record["signature"]
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(AuditProblem(f"unreadable checkpoint ({exc}) — it was edited", file=name))
        return None
    if body["type"] != CHECKPOINT_TYPE or not isinstance(body["seq"], int):
        report.problems.append(AuditProblem("not an audit checkpoint of this format", file=name))
        return None
    reason = _signature_ok(keys, str(body["key_id"]), str(signature), canonical_bytes(body))
    if reason:
        report.problems.append(AuditProblem(f"checkpoint {reason}", file=name))
        return None
    report.checkpoint_seq = body["seq"]
    return body


def _check_tail(log: AuditLog, by_seq: Mapping[int, AuditEntry], last: AuditEntry | None,
                last_line: int, keys: Mapping[str, Ed25519PublicKey], report: AuditReport) -> None:
    checkpoint = _read_checkpoint(log, keys, report)
    if checkpoint is None:
        return
    cp_seq, cp_hash = checkpoint["seq"], checkpoint["hash"]
    if last is None:
        report.problems.append(AuditProblem(
            f"the log is empty but the signed checkpoint records seq {cp_seq} — the whole log "
            "was truncated or deleted"))
        return
    if last.seq < cp_seq:
        report.problems.append(AuditProblem(
            f"the log ends at seq {last.seq} but the signed checkpoint records seq {cp_seq} — "
            f"entries {last.seq + 1}..{cp_seq} were cut from the tail", line=last_line, seq=last.seq))
        return
    anchor = by_seq.get(cp_seq)
    if anchor is None or anchor.hash != cp_hash:
        report.problems.append(AuditProblem(
            f"entry {cp_seq} does not match the signed checkpoint's hash — entries up to the "
            "checkpoint were replaced", seq=cp_seq))
    elif last.seq == cp_seq + 1:
        report.notes.append(f"checkpoint lags one entry (seq {cp_seq}); an append was interrupted "
                            "before updating it, and the next append repairs it")
    elif last.seq > cp_seq + 1:
        report.problems.append(AuditProblem(
            f"entries {cp_seq + 1}..{last.seq} are not covered by the signed checkpoint (seq "
            f"{cp_seq}) — they were appended outside the audit API", line=last_line, seq=last.seq))


def verify_audit(
    lake: Lake | str | os.PathLike[str] | None = None, public_keys: Mapping[str, Ed25519PublicKey] | None = None
) -> AuditReport:
    """Check the whole audit log and its checkpoint.

    Args:
        lake: The lake or its root (``RLHF_WIZARD_HOME`` by default).
        public_keys: Trusted operator keys by key id; by default the lake's ``keys/operator.pub``
            and the ``.pub`` beside ``RLHF_WIZARD_OPERATOR_KEY``.

    Returns:
        An :class:`AuditReport`; ``report.ok`` is False if anything was edited, removed,
        reordered, forged, or cut from the tail, with each problem's line and seq.
    """
    log = AuditLog(lake)
    keys = dict(public_keys) if public_keys is not None else trusted_operator_keys(log.lake)
    report = AuditReport(path=str(log.path))
    data = log.read_bytes()
    if not keys and data:
        report.problems.append(AuditProblem("no trusted operator public key found (keys/operator.pub); "
                                            "pass one with --pubkey", file="keys"))
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        report.problems.append(AuditProblem(
            "the last line is incomplete (no newline) — the file was cut mid-entry", line=len(lines)))
    prev: AuditEntry | None = None
    last: AuditEntry | None = None
    last_line = 0
    by_seq: dict[int, AuditEntry] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw)
            entry = AuditEntry.from_json(record)
        except (ValueError, KeyError, TypeError) as exc:
            report.problems.append(AuditProblem(f"not a valid audit entry ({exc}) — the line was "
                                                "edited or damaged", line=number))
            prev = None
            continue
        messages = _check_entry(entry, keys) + _check_link(entry, prev, first=number == 1)
        if not messages and (set(record) != {*BODY_FIELDS, "hash", "signature"}
                             or canonical_bytes(record) != raw):
            messages.append("the line is not in the canonical form the log writes (fields added "
                            "or reformatted) — it was edited")
        for message in messages:
            report.problems.append(AuditProblem(message, line=number, seq=entry.seq))
        by_seq.setdefault(entry.seq, entry)
        prev = last = entry
        last_line = number
        report.entries += 1
    if last is not None:
        report.last_seq, report.last_hash = last.seq, last.hash
    _check_tail(log, by_seq, last, last_line, keys, report)
    if report.entries and os.environ.get("RLHF_WIZARD_OPERATOR_KEY") is None and public_keys is None:
        report.notes.append("trusting the lake's own keys/operator.pub; pin the key with --pubkey "
                            "for a check independent of the lake's contents")
    return report
