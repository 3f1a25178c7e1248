"""Run tokens (EdDSA JWTs): the attack list, each refused with its own message, and what passes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, OKPKey

from rlhf_core.errors import AccessDeniedError, TokenError
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.enforce import authorize
from rlhf_core.security.access.session import parse_ttl
from rlhf_core.security.access.tokens import issue_token, verify_token
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.keys import key_id_of
from tests.security.access_helpers import install, key, policy

AUDIENCE = "rlhf-contract-wizard"
POLICY = policy({"alice": ["admin"], "op": ["operator"], "auth": ["author"]})
OPERATOR = POLICY.role_permissions("operator")


def _token(*, who: str = "op", role: str = "operator", ttl: int = 600, now: float | None = None,
           **limits: str) -> str:
    return issue_token(key(who), principal=who, role=role, actions=POLICY.role_permissions(role),
                       audience=AUDIENCE, ttl_seconds=ttl, now=now, **limits)[0]


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: object) -> dict:
    now = int(time.time())
    return {"iss": "op", "sub": "op", "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600,
            "jti": "j-" + str(time.time_ns()), "role": "operator", "actions": sorted(OPERATOR),
            **overrides}


def _signed(claims: dict, signer: str = "op", kid_of: str = "op") -> str:
    header = {"alg": "EdDSA", "kid": key_id_of(key(kid_of).public_key())}
    with pytest.warns(Warning):  # joserfc notes RFC 9864's newer name for EdDSA
        return jwt.encode(header, claims, OKPKey.import_key(key(signer)), algorithms=["EdDSA"])


def _altered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["actions"] = sorted(set(claims["actions"]) | {"policy.change"})
    return ".".join((header, _b64(claims), signature))


def _alg_none() -> str:
    return ".".join((_b64({"alg": "none", "kid": key_id_of(key("op").public_key())}), _b64(_claims()), ""))


def _hs256_with_public_key() -> str:
    """Algorithm confusion: an HMAC keyed with the principal's *public* key, which anyone has."""
    public = POLICY.principals["op"].public_key
    header = {"alg": "HS256", "kid": key_id_of(key("op").public_key())}
    return jwt.encode(header, _claims(), OctKey.import_key(public.encode()), algorithms=["HS256"])


ATTACKS = {
    "expired": (lambda: _token(now=time.time() - 7200, ttl=3600), "expired at"),
    "not yet valid": (lambda: _signed(_claims(nbf=int(time.time()) + 3600)), "is not valid before"),
    "wrong audience": (lambda: _signed(_claims(aud="another-platform")), "is for audience 'another-platform'"),
    "unknown key": (lambda: _token(who="mallory"), "is not bound to any principal"),
    "wrong key": (lambda: _signed(_claims(), signer="mallory"), "signature does not verify"),
    "altered payload": (lambda: _altered(_token()), "signature does not verify with the key of principal 'op'"),
    "alg none": (_alg_none, "algorithm 'none' refused (an unsigned token)"),
    "HS256 with the public key": (_hs256_with_public_key, "algorithm 'HS256' refused (a shared-secret MAC"),
    "issuer is not the key's principal": (lambda: _signed(_claims(iss="alice", sub="alice")), "is not 'op'"),
    "lifetime beyond the policy's": (lambda: _token(ttl=7 * 86_400), "longer than the policy's max_ttl_seconds"),
    "not a JWS": (lambda: "not-a-token", "not a compact JWS"),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_each_attack_is_refused_by_verification(name: str) -> None:
    make, expected = ATTACKS[name]
    with pytest.raises(TokenError) as refused:
        verify_token(make(), POLICY)
    assert expected in str(refused.value)


def test_every_refusal_has_its_own_message(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    install(lake, POLICY, ["alice"])
    messages = {}
    for name, (make, expected) in ATTACKS.items():
        with pytest.raises(AccessDeniedError) as denied:
            authorize("run", token=make(), run_id=f"r-{len(messages)}", lake=lake)
        messages[name] = str(denied.value)
        assert expected in messages[name] and "may not run" in messages[name]
        assert "\n" not in messages[name]
    # Replay, another run id, another contract, an action the token does not carry.
    token = _token()
    assert authorize("run", token=token, run_id="r-ok", lake=lake).principal == "op"
    assert authorize("run", token=token, run_id="r-ok", lake=lake).jti  # a retry of the same run
    limited = _token(run_id="r-mine", contract_hash="sha256:" + "a" * 64)
    author = _token(who="auth", role="author")
    cases = {
        "replayed jti": (lambda: authorize("run", token=token, run_id="r-other", lake=lake),
                         "was already used for run r-ok"),
        "token for another run": (lambda: authorize("run", token=limited, run_id="r-theirs", lake=lake),
                                  "limited to run r-mine, not r-theirs"),
        "token for another contract": (lambda: authorize(
            "run", token=limited, run_id="r-mine", contract_hash="sha256:" + "b" * 64, lake=lake),
            "limited to contract sha256:aaaa"),
        "action not in the token": (lambda: authorize("export", token=author, run_id="r-x", lake=lake),
                                    "missing permission 'export': the token (role author)"),
    }
    for name, (attempt, expected) in cases.items():
        with pytest.raises(AccessDeniedError) as denied:
            attempt()
        messages[name] = str(denied.value)
        assert expected in messages[name]
    reasons = [m.split(": ", 1)[1] for m in messages.values()]
    assert len(set(reasons)) == len(reasons)
    denials = [e for e in AuditLog(lake).entries() if e.kind == "access_denied"]
    assert len(denials) == len(messages)


def test_a_valid_token_passes_within_the_clock_skew(tmp_path: Path) -> None:
    skewed = _signed(_claims(nbf=int(time.time()) + 30))  # 30 s ahead: within the 60 s leeway
    verified = verify_token(skewed, POLICY)
    assert (verified.principal, verified.role, verified.actions) == ("op", "operator", OPERATOR)
    just_expired = _token(now=time.time() - 630, ttl=600)  # expired 30 s ago
    assert verify_token(just_expired, POLICY).principal == "op"


def test_a_token_of_a_revoked_role_or_principal_is_refused(tmp_path: Path) -> None:
    from rlhf_core.security.access.changes import propose_revoke

    lake = Lake(tmp_path / "lake")
    store = install(lake, policy({"alice": ["admin"], "op": ["operator", "auditor"]}), ["alice"])
    token, audit_token = _token(run_id="r1"), _token(role="auditor")
    propose_revoke(store, "op", actor="alice", role="operator")
    store.sign_pending(key("alice"))
    with pytest.raises(AccessDeniedError, match="acts as role 'operator', which op no longer holds"):
        authorize("run", token=token, run_id="r1", lake=lake)
    propose_revoke(store, "op", actor="alice")
    store.sign_pending(key("alice"))
    with pytest.raises(AccessDeniedError, match="not bound to any principal of access policy v3"):
        authorize("audit.read", token=audit_token, lake=lake)


def test_parse_ttl() -> None:
    assert [parse_ttl(t) for t in ("90s", "15m", "1h", "2d", "30")] == [90, 900, 3600, 172_800, 30]
    for bad in ("", "0h", "-1h", "1w", "h"):
        with pytest.raises(ValueError):
            parse_ttl(bad)
