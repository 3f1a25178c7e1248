"""Tokens for people at a shell: issue a run token, or mint a single-use one for one command.

``rlhf-wizard access token`` calls :func:`issue` (the token is listed, never stored, in
``access/issued_tokens.jsonl`` and audited as ``token_issued``). Any other command, when a
policy is installed, identifies its user by :func:`invocation_token`: ``RLHF_WIZARD_TOKEN``
(or ``--token``), else a five-minute token limited to the command's run id, minted from the
principal's key in ``RLHF_WIZARD_PRINCIPAL_KEY`` (decrypted with ``RLHF_WIZARD_KEY_PASSPHRASE``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rlhf_core.errors import AccessDeniedError, KeyFileError, SignatureError
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.enforce import governing_lake
from rlhf_core.security.access.ledger import ISSUED, TokenLedger
from rlhf_core.security.access.policy import AccessPolicy
from rlhf_core.security.access.store import PolicyStore
from rlhf_core.security.access.tokens import issue_token
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.keys import key_id_of, load_private_key, resolve_passphrase

TOKEN_ENV = "RLHF_WIZARD_TOKEN"
PRINCIPAL_KEY_ENV = "RLHF_WIZARD_PRINCIPAL_KEY"
ROLE_ENV = "RLHF_WIZARD_ROLE"
INVOCATION_TTL_S = 300

__all__ = ["INVOCATION_TTL_S", "PRINCIPAL_KEY_ENV", "ROLE_ENV", "TOKEN_ENV", "Issued", "invocation_token",
           "issue", "parse_ttl", "principal_of"]


@dataclass(frozen=True)
class Issued:
    """A token :func:`issue` signed, and its claims."""

    token: str
    claims: dict


def parse_ttl(text: str) -> int:
    """``90s``, ``15m``, ``1h``, ``2d`` (or plain seconds) -> seconds.

    Raises:
        ValueError: Not a positive duration in one of those forms.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    value = text.strip().lower()
    scale = units.get(value[-1:], None)
    number = value[:-1] if scale else value
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"--ttl {text!r}: use a positive duration such as 90s, 15m, 1h or 2d")
    return int(number) * (scale or 1)


def principal_of(policy: AccessPolicy, private: Ed25519PrivateKey, where: str) -> str:
    """The principal a private key belongs to.

    Raises:
        SignatureError: No principal of the policy has this key.
    """
    name = policy.principal_for_key_id(key_id_of(private.public_key()))
    if name is None:
        raise SignatureError(f"{where}: this key belongs to no principal of access policy "
                             f"v{policy.version}; ask an admin to `rlhf-wizard access grant` it")
    return name


def _installed_policy(lake: Lake) -> AccessPolicy:
    installed = PolicyStore(lake).installed()
    if installed is None:
        raise SignatureError(f"{lake.root} has no access policy installed (open mode): tokens "
                             "are not needed; install one with `rlhf-wizard access init`")
    return installed.policy


def issue(key_path: str | Path, *, role: str, ttl_seconds: int, lake: Lake,
          run_id: str | None = None, contract_hash: str | None = None,
          passphrase: bytes | None = None) -> Issued:
    """Sign a run token for the principal owning ``key_path``, acting in ``role``.

    Raises:
        AccessDeniedError: The principal does not hold ``role``, or the lifetime exceeds the
            policy's maximum.
        SignatureError: No policy installed, or the key is no principal's.
        KeyFileError: The key cannot be read or decrypted.
    """
    lake = governing_lake(lake)
    policy = _installed_policy(lake)
    private = load_private_key(key_path, passphrase or resolve_passphrase())
    who = principal_of(policy, private, str(key_path))
    if role not in policy.principals[who].roles:
        raise AccessDeniedError(
            f"access denied: {who} may not issue a token for role '{role}': it holds "
            f"{', '.join(policy.principals[who].roles)}", principal=who, action="token")
    if ttl_seconds > policy.tokens.max_ttl_seconds:
        raise AccessDeniedError(
            f"access denied: {who} may not issue a token living {ttl_seconds} s: access policy "
            f"v{policy.version} allows at most {policy.tokens.max_ttl_seconds} s",
            principal=who, action="token")
    token, claims = issue_token(private, principal=who, role=role,
                                actions=policy.role_permissions(role),
                                audience=policy.tokens.audience, ttl_seconds=ttl_seconds,
                                run_id=run_id, contract_hash=contract_hash)
    listed = {k: claims.get(k) for k in ("jti", "iss", "role", "iat", "exp", "run_id", "contract_hash")}
    TokenLedger(lake, ISSUED).append(listed)
    AuditLog(lake).append("token_issued", claims["jti"], {**listed, "policy_version": policy.version},
                          actor=who)
    return Issued(token, claims)


def invocation_token(action: str, *, lake: Lake, run_id: str | None = None,
                     key_path: str | Path | None = None, token: str | None = None) -> str | None:
    """The caller's token for one command (None: no credentials given).

    In order: a token minted from ``key_path``; ``token`` (``--token``); ``RLHF_WIZARD_TOKEN``;
    a token minted from the key in ``RLHF_WIZARD_PRINCIPAL_KEY``.

    The minted token acts in ``RLHF_WIZARD_ROLE`` if set, else in the principal's first role
    that permits ``action`` (else its first role: the check then names what is missing).

    Raises:
        KeyFileError: The principal key cannot be read or decrypted.
        SignatureError: The key is no principal's.
    """
    given = token or os.environ.get(TOKEN_ENV)
    if given and key_path is None:
        return given.strip()
    key_path = key_path or os.environ.get(PRINCIPAL_KEY_ENV)
    if not key_path:
        return None
    installed = PolicyStore(governing_lake(lake)).installed()
    if installed is None:
        return None
    policy = installed.policy
    path = Path(key_path).expanduser()
    if not path.is_file():
        raise KeyFileError(f"{PRINCIPAL_KEY_ENV}={path}: no such key file")
    private = load_private_key(path, resolve_passphrase())
    who = principal_of(policy, private, str(path))
    roles = policy.principals[who].roles
    role = os.environ.get(ROLE_ENV) or policy.role_for(who, action) or roles[0]
    token, _ = issue_token(private, principal=who, role=role, actions=policy.role_permissions(role),
                           audience=policy.tokens.audience, ttl_seconds=INVOCATION_TTL_S,
                           run_id=run_id)
    return token
