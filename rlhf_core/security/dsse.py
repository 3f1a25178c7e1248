"""DSSE envelopes for contract approvals.

An envelope holds one statement ``{contract, version, hash, file_digest}`` (canonical JSON,
base64 in ``payload``) and one signature per approving stakeholder, each an Ed25519 signature
over the DSSE pre-authentication encoding (PAE) of payload type and payload. The envelope is
stored beside the contract as ``<contract file stem>.contract.dsse.json``, in one canonical
layout (sorted keys, two-space indent, trailing newline), so any edit of the file is detected.

References:
    DSSE v1 protocol. https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

from rlhf_core.errors import SignatureError
from rlhf_core.security.keys import atomic_write

PAYLOAD_TYPE = "application/vnd.rlhf-contract-wizard.contract+json"
ENVELOPE_SUFFIX = ".contract.dsse.json"


@dataclass(frozen=True)
class Statement:
    """What stakeholders sign: the contract's name, version, canonical hash and file digest."""

    contract: str
    version: str
    hash: str
    file_digest: str

    def to_bytes(self) -> bytes:
        """Canonical (RFC 8785) JSON bytes of the statement."""
        return rfc8785.dumps(
            {
                "contract": self.contract,
                "version": self.version,
                "hash": self.hash,
                "file_digest": self.file_digest,
            }
        )


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: ``keyid`` (hex SHA-256 of the raw public key) and raw signature."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: payload type, payload bytes and signatures in signing order."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def pae(self) -> bytes:
        """The bytes every signature covers."""
        return pae(self.payload_type, self.payload)

    def to_json(self) -> str:
        """The canonical on-disk layout."""
        doc = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope_path(contract_path: str | Path) -> Path:
    """``configs/contracts/demo.yaml`` -> ``configs/contracts/demo.contract.dsse.json``."""
    p = Path(contract_path)
    return p.with_name(p.stem + ENVELOPE_SUFFIX)


def _b64(value: Any, what: str, path: Path) -> bytes:
    if not isinstance(value, str):
        raise SignatureError(f"{path}: {what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{path}: {what} is not valid base64; the envelope is corrupt") from None


def read_envelope(path: str | Path) -> Envelope:
    """Read and structurally validate an envelope file.

    Raises:
        SignatureError: Missing file, invalid JSON, missing fields, bad base64, or a layout
            that differs from the canonical one (someone edited the file by hand).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SignatureError(
            f"{p}: no approval envelope; sign the contract with `rlhf-wizard contract sign`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SignatureError(f"{p}: cannot read envelope ({exc})") from None
    return parse_envelope(text, p)


def parse_envelope(text: str, p: str | Path) -> Envelope:
    """Parse and structurally validate an envelope's text (named ``p`` in errors).

    Raises:
        SignatureError: As :func:`read_envelope`, for everything but a missing file.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SignatureError(f"{p}:{exc.lineno}:{exc.colno}: envelope is not valid JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"payloadType", "payload", "signatures"}:
        raise SignatureError(f"{p}: envelope must have exactly payloadType, payload, signatures")
    if not isinstance(doc["signatures"], list):
        raise SignatureError(f"{p}: envelope signatures must be a list")
    signatures = []
    for i, item in enumerate(doc["signatures"]):
        if not isinstance(item, dict) or set(item) != {"keyid", "sig"}:
            raise SignatureError(f"{p}: signatures[{i}] must have exactly keyid and sig")
        if not isinstance(item["keyid"], str):
            raise SignatureError(f"{p}: signatures[{i}].keyid must be a string")
        signatures.append(Signature(item["keyid"], _b64(item["sig"], f"signatures[{i}].sig", p)))
    if not isinstance(doc["payloadType"], str):
        raise SignatureError(f"{p}: payloadType must be a string")
    envelope = Envelope(doc["payloadType"], _b64(doc["payload"], "payload", p), tuple(signatures))
    if envelope.to_json() != text:
        raise SignatureError(
            f"{p}: envelope was edited by hand (its bytes differ from the canonical layout); "
            "re-create it with `rlhf-wizard contract sign`"
        )
    return envelope


def write_envelope(path: str | Path, envelope: Envelope) -> None:
    """Write an envelope atomically in its canonical layout."""
    atomic_write(Path(path), envelope.to_json().encode("ascii"))


def decode_statement(envelope: Envelope, path: Path) -> Statement:
    """The statement inside an envelope.

    Raises:
        SignatureError: Wrong payload type or a payload that is not a canonical statement.
    """
    if envelope.payload_type != PAYLOAD_TYPE:
        raise SignatureError(
            f"{path}: payloadType is {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}"
        )
    try:
        doc = json.loads(envelope.payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SignatureError(f"{path}: payload is not JSON; the envelope is corrupt") from None
    keys = {"contract", "version", "hash", "file_digest"}
    if not isinstance(doc, dict) or set(doc) != keys or not all(
        isinstance(doc[k], str) for k in keys
    ):
        raise SignatureError(f"{path}: payload must be a statement with {sorted(keys)}")
    statement = Statement(doc["contract"], doc["version"], doc["hash"], doc["file_digest"])
    if statement.to_bytes() != envelope.payload:
        raise SignatureError(f"{path}: payload is not in canonical JSON form; envelope corrupt")
    return statement
