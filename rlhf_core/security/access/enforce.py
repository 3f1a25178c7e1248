"""Decide whether a principal may perform an action: ``authorize`` (and ``permit`` for nested work).

With no installed policy the platform is in *open mode*: every action is allowed and nothing is
recorded, exactly as before policies existed. With one installed, the caller proves who it is
with a run token (:mod:`rlhf_core.security.access.tokens`) or is a principal the caller has
already authenticated; the action must be in the token's ``actions`` *and* in the role the
principal holds in the current policy. Every decision is audited: ``access_granted`` or
``access_denied`` (actor = the principal, ``role`` and the reason in the details), and a denial
raises :class:`~rlhf_core.errors.AccessDeniedError` with one line naming the principal, the
action and what is missing. A policy that does not verify denies everything (fail closed).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rlhf_core.errors import AccessDeniedError, ConfigError, TokenError, WizardError
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.context import Grant, lake_key
from rlhf_core.security.access.ledger import USED, TokenLedger
from rlhf_core.security.access.policy import ACTIONS, AccessPolicy
from rlhf_core.security.access.store import ANCHOR_ENV, PolicyStore
from rlhf_core.security.access.tokens import RunToken, verify_token
from rlhf_core.security.audit import AuditLog

ANONYMOUS = "anonymous"
REPLACE = "run.replace"

__all__ = ["ANONYMOUS", "authorize", "governing_lake", "open_grant", "permit"]

ContractHash = str | Callable[[], str] | None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def open_grant(action: str, lake: Lake) -> Grant:
    """The grant of open mode (no policy installed): everything is allowed."""
    return Grant(action=action, principal=_os_user(), role=None, permissions=frozenset(ACTIONS),
                 lake=lake_key(lake.root), open=True)


def governing_lake(lake: Lake) -> Lake:
    """The lake whose installed policy decides about work on ``lake``.

    ``lake`` itself when it has a policy (or ``RLHF_WIZARD_ACCESS_ANCHOR`` is set, which demands
    one); else this process's home lake (``RLHF_WIZARD_HOME``) when *that* has one, so pointing a
    flow's ``lake_root`` at a fresh folder never escapes the home's policy into open mode; else
    ``lake`` (open mode).
    """
    if os.environ.get(ANCHOR_ENV) or PolicyStore(lake).is_installed():
        return lake
    home = Lake.from_env()
    if lake_key(home.root) != lake_key(lake.root) and PolicyStore(home).is_installed():
        return home
    return lake


@dataclass(frozen=True)
class _Request:
    """One decision in the making: where it is recorded and how a denial reads."""

    lake: Lake
    action: str
    run_id: str | None
    version: int | None
    record: bool

    def deny(self, who: str, reason: str, role: str | None = None) -> AccessDeniedError:
        on = f" (run {self.run_id})" if self.run_id else ""
        message = f"access denied: {who} may not {self.action}{on}: {reason}"
        if self.record:
            details: dict[str, Any] = {"action": self.action, "role": role, "reason": reason,
                                       "run_id": self.run_id, "policy_version": self.version}
            try:
                AuditLog(self.lake).append("access_denied", self.run_id or self.action, details,
                                           actor=who)
            except (WizardError, OSError) as exc:
                message += f" (the denial could not be audited: {exc})"
        return AccessDeniedError(message, principal=who, action=self.action)


def authorize(action: str, *, token: str | None = None, principal: str | None = None,
              run_id: str | None = None, contract_hash: ContractHash = None,
              lake: Lake | str | None = None, replaces_run: bool | Callable[[], bool] = False,
              now: float | None = None, record: bool = True) -> Grant:
    """Allow ``action`` or raise; audit the decision.

    Args:
        action: One of :data:`~rlhf_core.security.access.policy.ACTIONS`.
        token: A run token (compact JWS); its ``jti`` is recorded as used for ``run_id``.
        principal: A principal the caller has already authenticated (ignored with a token).
        run_id: The run the action is for (checked against the token's limit; keys replay).
        contract_hash: The contract the action uses, or a function computing it (called only
            when the token is limited to a contract).
        lake: The lake the action works on (``RLHF_WIZARD_HOME`` by default); its policy, else
            the home lake's, decides (:func:`governing_lake`) and records the decision.
        replaces_run: The action would overwrite ``run_id``'s existing results (or a function
            telling, called only when a policy is installed): also requires ``run.replace``,
            unless this same token already started that run (a retry).
        now: Check time for the token (Unix seconds; default now).
        record: False for a question without side effects (``access check``): nothing is
            audited and the token is not marked used.

    Returns:
        The grant (an open grant when no policy is installed).

    Raises:
        AccessDeniedError: One line naming the principal, the action and the reason.
        ConfigError: ``action`` is not a known action.
    """
    if action not in ACTIONS:
        raise ConfigError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
    target = lake if isinstance(lake, Lake) else Lake(lake)
    lake = governing_lake(target)
    try:
        installed = PolicyStore(lake).installed()
    except WizardError as exc:
        request = _Request(lake, action, run_id, None, record)
        raise request.deny(principal or ANONYMOUS, f"the installed access policy does not verify, "
                           f"so nothing may act ({exc})") from None
    if installed is None:
        return open_grant(action, target)
    policy = installed.policy
    request = _Request(lake, action, run_id, policy.version, record)
    replaces_run = replaces_run() if callable(replaces_run) else replaces_run
    if token:
        grant = _by_token(request, token, policy, contract_hash, replaces_run, now)
    elif principal:
        grant = _by_principal(request, principal, policy, replaces_run)
    else:
        raise request.deny(ANONYMOUS, "no credentials: give a run token (--token, "
                           "RLHF_WIZARD_TOKEN, or the flow's token/token_block parameter) or a "
                           f"principal key (RLHF_WIZARD_PRINCIPAL_KEY); access policy "
                           f"v{policy.version} is installed")
    grant = replace(grant, lake=lake_key(target.root))
    if record:
        AuditLog(lake).append("access_granted", run_id or action, {
            "action": action, "role": grant.role, "run_id": run_id, "jti": grant.jti,
            "policy_version": policy.version}, actor=grant.principal)
    return grant


def _by_principal(request: _Request, who: str, policy: AccessPolicy, replaces_run: bool) -> Grant:
    if who not in policy.principals:
        raise request.deny(who, f"not a principal of access policy v{policy.version}")
    roles = ", ".join(policy.principals[who].roles)
    for needed in (request.action, REPLACE) if replaces_run else (request.action,):
        if policy.role_for(who, needed) is None:
            raise request.deny(who, f"missing permission '{needed}' (roles: {roles})", roles)
    return Grant(action=request.action, principal=who, role=policy.role_for(who, request.action),
                 permissions=policy.permissions_of(who), lake=lake_key(request.lake.root),
                 policy_version=policy.version)


def _by_token(request: _Request, token: str, policy: AccessPolicy, contract_hash: ContractHash,
              replaces_run: bool, now: float | None) -> Grant:
    try:
        claims = verify_token(token, policy, now=now)
    except TokenError as exc:
        raise request.deny(exc.principal or ANONYMOUS, str(exc)) from None
    who, role = claims.principal, claims.role

    def deny(reason: str) -> AccessDeniedError:
        return request.deny(who, reason, role)

    if role not in policy.principals[who].roles:
        raise deny(f"the token acts as role '{role}', which {who} no longer holds in access "
                   f"policy v{policy.version}")
    _check_limits(claims, request.run_id, contract_hash, deny)
    ledger = TokenLedger(request.lake, USED)
    key = request.run_id or ""
    uses = [r for r in ledger.records() if r.get("jti") == claims.jti]
    _check_replay(uses, claims, key, deny)
    retry = bool(uses)
    current = policy.role_permissions(role)
    for needed in (request.action, REPLACE) if replaces_run and not retry else (request.action,):
        if needed not in claims.actions:
            raise deny(f"missing permission '{needed}': the token (role {role}) does not carry it")
        if needed not in current:
            raise deny(f"missing permission '{needed}': role {role} no longer has it in access "
                       f"policy v{policy.version}")
    if request.record and not retry:
        entry = {"jti": claims.jti, "run_id": key, "principal": who, "role": role,
                 "exp": claims.expires, "action": request.action}
        ledger.append(entry, check=lambda records: _check_replay(
            [r for r in records if r.get("jti") == claims.jti], claims, key, deny))
    return Grant(action=request.action, principal=who, role=role,
                 permissions=claims.actions & current, lake=lake_key(request.lake.root),
                 policy_version=policy.version, jti=claims.jti, limit_run_id=claims.run_id,
                 limit_contract_hash=claims.contract_hash)


def _check_limits(claims: RunToken, run_id: str | None, contract_hash: ContractHash,
                  deny: Callable[[str], AccessDeniedError]) -> None:
    if claims.run_id is not None and claims.run_id != run_id:
        raise deny(f"the token is limited to run {claims.run_id}, not "
                   f"{run_id or 'an action without a run id'}")
    if claims.contract_hash is not None:
        actual = contract_hash() if callable(contract_hash) else contract_hash
        if actual != claims.contract_hash:
            raise deny(f"the token is limited to contract {claims.contract_hash}, not "
                       f"{actual or 'an action without a contract'}")


def _check_replay(uses: list[dict], claims: RunToken, key: str,
                  deny: Callable[[str], AccessDeniedError]) -> None:
    other = next((u for u in uses if u.get("run_id") != key), None)
    if other is not None:
        raise deny(f"token {claims.jti[:12]}… was already used for run "
                   f"{other.get('run_id') or '(no run id)'}; a token is single-use per run: issue "
                   "a new one with `rlhf-wizard access token`")


def permit(grant: Grant, action: str, *, lake: Lake | str | None = None,
           run_id: str | None = None) -> Grant:
    """Allow work nested in a granted action (a sub-flow of a granted flow) without a new token.

    A ``run`` nested in a ``run.unapproved`` grant is a stage of that dry run and is allowed.

    Raises:
        AccessDeniedError: The grant does not cover ``action``, or its token is limited to
            another run (audited like every denial).
    """
    if grant.open:
        return replace(grant, action=action)
    request = _Request(governing_lake(lake if isinstance(lake, Lake) else Lake(lake)), action,
                       run_id, grant.policy_version, record=True)
    if grant.limit_run_id is not None and run_id is not None and run_id != grant.limit_run_id:
        raise request.deny(grant.principal, f"the token is limited to run {grant.limit_run_id}",
                           grant.role)
    # The stages of a dry run (ingest, score ... as sub-flows) are that dry run, not a run.
    dry_stage = action == "run" and grant.action == "run.unapproved"
    if action not in grant.permissions and not dry_stage:
        raise request.deny(grant.principal, f"missing permission '{action}' (granted "
                           f"{grant.action} as {grant.role})", grant.role)
    return replace(grant, action=grant.action if dry_stage else action)
