"""Run tokens: short-lived JWTs (compact JWS, EdDSA over Ed25519) a principal signs for itself.

A flow started from the Prefect UI, a schedule or ``prefect deployment run`` has no shell user;
it carries its authority as a token. Header: ``alg`` = ``EdDSA``, ``kid`` = the key id of the
principal's public key (hex SHA-256 of its raw bytes), ``typ`` = ``JWT``. Claims: ``iss`` and
``sub`` = the principal, ``aud`` = the policy's audience, ``iat``/``nbf``/``exp``, a random
``jti``, ``role``, ``actions`` (the role's permissions when issued) and optionally ``run_id`` /
``contract_hash`` limits. JWS encoding, signatures and the registered claims are handled by
``joserfc``; this module decides what is acceptable.

:func:`verify_token` refuses, each with its own message: a malformed token, any ``alg`` but
EdDSA (``none``, and HS256 keyed with the public key: algorithm confusion), a key id bound to
no principal, a bad signature (altered payload or another key), an issuer that is not the key's
principal, an expired or not-yet-valid token (bounded clock skew), a wrong audience, a lifetime
beyond the policy's maximum, and missing or mistyped claims. Replay and run limits need the
lake and the request: see :mod:`rlhf_core.security.access.enforce`.

References:
    RFC 7519 (JWT), RFC 7515 (JWS), RFC 8037 (EdDSA in JOSE), RFC 8725 (JWT best current
    practices: pin the algorithm, validate every claim).
"""

from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    SecurityWarning,
)
from joserfc.jwk import OKPKey

from rlhf_core.errors import TokenError
from rlhf_core.security.access.policy import AccessPolicy
from rlhf_core.security.keys import key_id_of, parse_public_key

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti", "role", "actions")

__all__ = ["ALGORITHM", "RunToken", "issue_token", "verify_token"]


@dataclass(frozen=True)
class RunToken:
    """A token's verified claims.

    Attributes:
        principal: ``iss`` (= ``sub``): who signed it.
        role: The role it was issued for.
        actions: The permissions it carries.
        jti: Its unique id.
        expires: ``exp`` (Unix seconds).
        run_id: The run it is limited to (None: any run).
        contract_hash: The contract it is limited to (None: any contract).
    """

    principal: str
    role: str
    actions: frozenset[str]
    jti: str
    expires: int
    run_id: str | None = None
    contract_hash: str | None = None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def issue_token(private: Ed25519PrivateKey, *, principal: str, role: str, actions: frozenset[str] | list[str],
                audience: str, ttl_seconds: int, run_id: str | None = None,
                contract_hash: str | None = None, now: float | None = None) -> tuple[str, dict]:
    """Sign a run token with the principal's key.

    Args:
        private: The principal's Ed25519 private key.
        principal: The principal's name in the policy (``iss`` and ``sub``).
        role: The role the token acts in.
        actions: The permissions it carries (the role's).
        audience: The policy's ``tokens.audience``.
        ttl_seconds: Lifetime.
        run_id: Limit the token to this run id.
        contract_hash: Limit the token to this contract hash.
        now: Issue time (Unix seconds; default now).

    Returns:
        The compact JWS and its claims.
    """
    issued = int(now if now is not None else time.time())
    claims: dict = {
        "iss": principal, "sub": principal, "aud": audience, "iat": issued, "nbf": issued,
        "exp": issued + int(ttl_seconds), "jti": uuid.uuid4().hex, "role": role,
        "actions": sorted(actions),
    }
    if run_id is not None:
        claims["run_id"] = run_id
    if contract_hash is not None:
        claims["contract_hash"] = contract_hash
    header = {"alg": ALGORITHM, "kid": key_id_of(private.public_key())}
    with warnings.catch_warnings():
        # RFC 9864 prefers the fully specified name "Ed25519"; "EdDSA" is what RFC 8037 defines
        # and what every JOSE library verifies, and only Ed25519 keys are ever used here.
        warnings.simplefilter("ignore", SecurityWarning)
        token = jwt.encode(header, claims, OKPKey.import_key(private), algorithms=[ALGORITHM])
    return token, claims


def _refuse(reason: str, principal: str | None = None) -> TokenError:
    return TokenError(reason, principal=principal)


def _header(token: str) -> dict:
    if not isinstance(token, str) or token.count(".") != 2:
        raise _refuse("the token is not a compact JWS (header.payload.signature)")
    try:
        header = jws.extract_compact(token.strip().encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError) as exc:
        raise _refuse(f"the token is not a readable compact JWS ({type(exc).__name__})") from None
    alg = header.get("alg")
    if alg != ALGORITHM:
        why = (" (an unsigned token)" if str(alg).lower() == "none" else
               " (a shared-secret MAC: anyone holding the public key could forge it)"
               if str(alg).upper().startswith("HS") else "")
        raise _refuse(f"token algorithm {alg!r} refused{why}: only EdDSA (Ed25519) tokens are "
                      "accepted")
    return header


def verify_token(token: str, policy: AccessPolicy, *, now: float | None = None) -> RunToken:
    """Check a token's signature and claims against ``policy``.

    Args:
        token: The compact JWS.
        policy: The installed policy (principals' keys, audience, lifetime, clock skew).
        now: The time to check against (Unix seconds; default now).

    Returns:
        The verified claims.

    Raises:
        TokenError: With one reason per failure (see the module docstring).
    """
    header = _header(token)
    kid = header.get("kid")
    principal = policy.principal_for_key_id(kid) if isinstance(kid, str) else None
    if principal is None:
        raise _refuse(f"token key id {str(kid)[:16]}… is not bound to any principal of access "
                      f"policy v{policy.version}")
    public = OKPKey.import_key(parse_public_key(policy.principals[principal].public_key))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            claims = jwt.decode(token.strip(), public, algorithms=[ALGORITHM]).claims
    except BadSignatureError:
        raise _refuse(f"token signature does not verify with the key of principal '{principal}' "
                      "(payload altered, or signed by another key)", principal) from None
    except JoseError as exc:
        raise _refuse(f"the token does not decode ({exc.error})", principal) from None
    if claims.get("iss") != principal or claims.get("sub") != principal:
        raise _refuse(f"token iss/sub {claims.get('iss')!r} is not '{principal}', the principal "
                      "bound to its signing key", principal)
    checked = _check_claims(claims, policy, principal, now)
    return checked


def _check_claims(claims: dict, policy: AccessPolicy, principal: str, now: float | None) -> RunToken:
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise _refuse(f"token of {principal} lacks claims {missing}", principal)
    clock = int(now if now is not None else time.time())
    skew = policy.tokens.clock_skew_seconds
    registry = jwt.JWTClaimsRegistry(now=clock, leeway=skew,
                                     aud={"essential": True, "value": policy.tokens.audience})
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise _refuse(f"token of {principal} expired at {_iso(claims['exp'])} ({skew} s clock skew "
                      "allowed); issue a new one with `rlhf-wizard access token`", principal) from None
    except ClaimError as exc:
        raise _refuse(_claim_reason(exc, claims, policy, principal), principal) from None
    lifetime = claims["exp"] - claims["iat"]
    if lifetime > policy.tokens.max_ttl_seconds:
        raise _refuse(f"token of {principal} lives {lifetime} s, longer than the policy's "
                      f"max_ttl_seconds {policy.tokens.max_ttl_seconds}", principal)
    actions, role = claims["actions"], claims["role"]
    limits = (claims.get("run_id"), claims.get("contract_hash"))
    if (not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)
            or not isinstance(role, str) or not all(v is None or isinstance(v, str) for v in limits)):
        raise _refuse(f"token of {principal} has mistyped role/actions/run_id/contract_hash claims",
                      principal)
    return RunToken(principal=principal, role=role, actions=frozenset(actions), jti=claims["jti"],
                    expires=int(claims["exp"]), run_id=limits[0], contract_hash=limits[1])


def _claim_reason(exc: ClaimError, claims: dict, policy: AccessPolicy, principal: str) -> str:
    name = getattr(exc, "claim", "") or str(exc)
    if "nbf" in name:
        return (f"token of {principal} is not valid before {_iso(claims['nbf'])} "
                f"({policy.tokens.clock_skew_seconds} s clock skew allowed)")
    if "iat" in name:
        return f"token of {principal} was issued in the future ({_iso(claims['iat'])})"
    if "aud" in name:
        return (f"token of {principal} is for audience {claims.get('aud')!r}, this platform is "
                f"{policy.tokens.audience!r}")
    return f"token of {principal} has an invalid claim ({exc.description or exc.error}: {name})"
