"""Who may act: the signed access policy (RBAC) and EdDSA run tokens.

Public API (imported lazily)::

    ACTIONS; AccessPolicy; load_policy(path); parse_policy(text)
    PolicyStore(lake).installed() / .pending() / .stage(...) / .sign_pending(key)
    issue_token(key, ...) -> (jws, claims); verify_token(jws, policy) -> RunToken
    authorize(action, *, token|principal, run_id, contract_hash, lake) -> Grant
    permit(grant, action) -> Grant; acting_as(grant); active_grant()
"""

from __future__ import annotations

from rlhf_core.lazy import lazy_exports

_EXPORTS = {
    "ACTIONS": "rlhf_core.security.access.policy",
    "AccessPolicy": "rlhf_core.security.access.policy",
    "load_policy": "rlhf_core.security.access.policy",
    "parse_policy": "rlhf_core.security.access.policy",
    "policy_yaml": "rlhf_core.security.access.policy",
    "PolicyStore": "rlhf_core.security.access.store",
    "InstalledPolicy": "rlhf_core.security.access.store",
    "ANCHOR_ENV": "rlhf_core.security.access.store",
    "issue_token": "rlhf_core.security.access.tokens",
    "verify_token": "rlhf_core.security.access.tokens",
    "RunToken": "rlhf_core.security.access.tokens",
    "authorize": "rlhf_core.security.access.enforce",
    "permit": "rlhf_core.security.access.enforce",
    "open_grant": "rlhf_core.security.access.enforce",
    "Grant": "rlhf_core.security.access.context",
    "acting_as": "rlhf_core.security.access.context",
    "active_grant": "rlhf_core.security.access.context",
    "TOKEN_ENV": "rlhf_core.security.access.session",
    "PRINCIPAL_KEY_ENV": "rlhf_core.security.access.session",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
