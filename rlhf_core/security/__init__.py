"""Keys, DSSE signatures and stakeholder approval of contracts.

Public API (imported lazily)::

    generate_keypair(private_path, passphrase) -> "ed25519:<base64>"
    load_private_key(path, passphrase); resolve_passphrase(confirm=False) -> bytes
    sign(contract_path, key_path, stakeholder, passphrase) -> ApprovalReport
    verify(contract_path) -> ApprovalReport; require_approved(contract_path) -> ApprovalReport
    envelope_path(contract_path) -> Path
"""

from __future__ import annotations

from rlhf_core.lazy import lazy_exports

_EXPORTS = {
    "generate_keypair": "rlhf_core.security.keys",
    "load_private_key": "rlhf_core.security.keys",
    "resolve_passphrase": "rlhf_core.security.keys",
    "parse_public_key": "rlhf_core.security.keys",
    "public_key_string": "rlhf_core.security.keys",
    "key_id": "rlhf_core.security.keys",
    "PASSPHRASE_ENV": "rlhf_core.security.keys",
    "envelope_path": "rlhf_core.security.dsse",
    "ApprovalReport": "rlhf_core.security.approval",
    "sign": "rlhf_core.security.approval",
    "verify": "rlhf_core.security.approval",
    "require_approved": "rlhf_core.security.approval",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
