"""The signed manifest of an export folder, and its verification.

``manifest.json`` lists every other file of the folder with its SHA-256 and size, plus the
export's provenance; ``manifest.dsse.json`` is a DSSE envelope whose payload is exactly the bytes
of ``manifest.json``, signed with the operator key (the key that signs the audit log). A folder
verifies when the envelope is canonical, its signature checks against a trusted key, the
manifest's bytes equal the signed payload, every listed file has its signed digest, and no
unlisted file was added (git and Hub bookkeeping, :data:`IGNORED`, aside). Any changed byte fails with a one-line :class:`SignatureError` naming
the file.

References:
    DSSE v1 protocol. https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rlhf_core.errors import SignatureError
from rlhf_core.security.dsse import Envelope, Signature, pae
from rlhf_core.security.operator_key import OperatorKey

__all__ = ["ENVELOPE", "IGNORED", "MANIFEST", "PAYLOAD_TYPE", "VerifiedExport", "file_sha256", "manifest_bytes",
           "verify_export", "write_signed_manifest"]

MANIFEST = "manifest.json"
ENVELOPE = "manifest.dsse.json"
PAYLOAD_TYPE = "application/vnd.rlhf-contract-wizard.export-manifest+json"
MANIFEST_VERSION = 1
IGNORED = frozenset({".git", ".gitattributes", ".cache"})
"""Top-level entries a copy of the folder gains from git or the Hugging Face Hub (a clone's
``.git/`` and ``.gitattributes``, ``hf download --local-dir``'s ``.cache/``): not export content,
so verification neither requires nor rejects them."""
_CHUNK = 1 << 22


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (read in 4 MiB chunks; hashlib releases the GIL)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_bytes(files: Mapping[str, tuple[str, int]], provenance: Mapping[str, Any]) -> bytes:
    """The manifest document: ``files`` maps a folder-relative POSIX path to (sha256, bytes)."""
    doc = {
        "manifest_version": MANIFEST_VERSION,
        "files": {name: {"sha256": sha, "bytes": size} for name, (sha, size) in sorted(files.items())},
        "provenance": provenance,
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def write_signed_manifest(folder: Path, manifest: bytes, key: OperatorKey) -> str:
    """Write ``manifest.json`` and its DSSE envelope signed by ``key``; return the manifest's SHA-256."""
    signature = base64.b64decode(key.sign(pae(PAYLOAD_TYPE, manifest)))
    envelope = Envelope(PAYLOAD_TYPE, manifest, (Signature(key.key_id, signature),))
    (folder / MANIFEST).write_bytes(manifest)
    (folder / ENVELOPE).write_text(envelope.to_json(), encoding="ascii")
    return hashlib.sha256(manifest).hexdigest()


@dataclass(frozen=True)
class VerifiedExport:
    """A folder that verified.

    Attributes:
        path: The folder.
        files: Files checked (besides the manifest and its envelope).
        key_id: The key that signed it.
        manifest: The decoded manifest.
    """

    path: str
    files: int
    key_id: str
    manifest: dict[str, Any]


def _read_envelope(path: Path) -> Envelope:
    try:
        text = path.read_text(encoding="ascii")
        doc = json.loads(text)
        sigs = tuple(Signature(s["keyid"], base64.b64decode(s["sig"], validate=True)) for s in doc["signatures"])
        envelope = Envelope(doc["payloadType"], base64.b64decode(doc["payload"], validate=True), sigs)
    except FileNotFoundError:
        raise SignatureError(f"{path}: missing; not a signed export folder (write one with "
                             "`rlhf-wizard export RUN --out DIR`)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"{path}: unreadable envelope ({type(exc).__name__}); it was changed "
                             "after the export") from None
    if envelope.to_json() != text or envelope.payload_type != PAYLOAD_TYPE or len(sigs) != 1:
        raise SignatureError(f"{path}: not the canonical export envelope; it was changed after the export")
    return envelope


def _check_signature(path: Path, envelope: Envelope, keys: Mapping[str, Ed25519PublicKey]) -> str:
    signature = envelope.signatures[0]
    public = keys.get(signature.keyid)
    if public is None:
        raise SignatureError(f"{path}: signed by key {signature.keyid[:16]}…, which is not trusted "
                             "here; pass --pubkey with the exporting operator's public key")
    try:
        public.verify(signature.sig, envelope.pae())
    except InvalidSignature:
        raise SignatureError(f"{path}: the signature does not verify; the envelope was changed "
                             "after the export") from None
    return signature.keyid


def _listed_files(folder: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise SignatureError(f"{folder / MANIFEST}: signed manifest has no file list")
    for name in files:
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts or name in (MANIFEST, ENVELOPE):
            raise SignatureError(f"{folder / MANIFEST}: signed manifest lists an unsafe path {name!r}")
    return files


def verify_export(folder: str | os.PathLike[str], keys: Mapping[str, Ed25519PublicKey]) -> VerifiedExport:
    """Check a signed export folder byte for byte.

    Args:
        folder: The export folder.
        keys: Trusted public keys by key id (the operator's).

    Returns:
        What was verified.

    Raises:
        SignatureError: The first problem, naming the file: a missing or edited envelope, an
            untrusted key, a bad signature, a changed ``manifest.json``, a changed, missing or
            added data file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise SignatureError(f"{root}: not a folder; `export verify` checks an export folder")
    envelope = _read_envelope(root / ENVELOPE)
    key_id = _check_signature(root / ENVELOPE, envelope, keys)
    try:
        on_disk = (root / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise SignatureError(f"{root / MANIFEST}: missing (deleted after the export)") from None
    if on_disk != envelope.payload:
        raise SignatureError(f"{root / MANIFEST}: changed since it was signed (its bytes differ from "
                             "the signed payload)")
    manifest = json.loads(envelope.payload)
    files = _listed_files(root, manifest)
    for name, entry in sorted(files.items()):
        path = root / name
        if not path.is_file():
            raise SignatureError(f"{path}: listed in the signed manifest but missing")
        actual = file_sha256(path)
        if actual != entry.get("sha256") or path.stat().st_size != entry.get("bytes"):
            raise SignatureError(f"{path}: changed since the export (sha256 {actual[:12]}…, signed "
                                 f"{str(entry.get('sha256'))[:12]}…)")
    for directory, subdirs, names in os.walk(root):
        if Path(directory) == root:
            subdirs[:] = [d for d in subdirs if d not in IGNORED]
            names = [n for n in names if n not in IGNORED]
        for name in sorted(names):
            rel = (Path(directory) / name).relative_to(root).as_posix()
            if rel not in files and rel not in (MANIFEST, ENVELOPE):
                raise SignatureError(f"{root / rel}: not listed in the signed manifest (added after "
                                     "the export)")
    return VerifiedExport(str(root), len(files), key_id, manifest)
