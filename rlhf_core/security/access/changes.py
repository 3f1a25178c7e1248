"""Policy changes as proposals: the first version, a grant, a revocation.

Each function stages the next version in the lake (:meth:`PolicyStore.stage`); it takes effect
only when a quorum of the current version's admins signs it (``rlhf-wizard access sign``).
A change builds on the pending proposal when there is one (its signatures are discarded, since
the text they approved changed), else on the installed version.
"""

from __future__ import annotations

from pathlib import Path

from rlhf_core.errors import ConfigError
from rlhf_core.security.access.policy import (
    ADMIN_PERMISSION,
    AccessPolicy,
    Principal,
    load_policy,
    policy_yaml,
)
from rlhf_core.security.access.store import PendingPolicy, PolicyStore

__all__ = ["propose_grant", "propose_initial", "propose_revoke"]


def propose_initial(store: PolicyStore, path: str | Path, *, actor: str) -> PendingPolicy:
    """Stage a policy file as version 1 of a lake that has no policy yet.

    Raises:
        ConfigError: A policy is already installed, or the file is not a valid version 1.
    """
    if store.is_installed():
        raise ConfigError(f"{store.lake.root} already has an access policy; change it with "
                          "`rlhf-wizard access grant|revoke`", str(path))
    policy = load_policy(path)
    return store.stage(policy, Path(path).read_text(encoding="utf-8"), actor=actor,
                       role=policy.role_for(actor, ADMIN_PERMISSION))


def _next(store: PolicyStore) -> AccessPolicy:
    installed = store.installed()
    if installed is None:
        raise ConfigError(f"{store.lake.root} has no access policy to change; install one with "
                          "`rlhf-wizard access init POLICY --key KEY`")
    pending = store.pending()
    base = pending.policy if pending else installed.policy
    return base.model_copy(deep=True, update={"version": installed.version + 1,
                                              "supersedes": installed.hash})


def _stage(store: PolicyStore, policy: AccessPolicy, what: str, actor: str) -> PendingPolicy:
    checked = AccessPolicy.model_validate(policy.model_dump())
    header = (f"access policy v{checked.version}: {what} (proposed by {actor}); approve with "
              "`rlhf-wizard access sign --key KEY`")
    return store.stage(checked, policy_yaml(checked, header), actor=actor)


def propose_grant(store: PolicyStore, principal: str, role: str, *, actor: str,
                  public_key: str | None = None) -> PendingPolicy:
    """Propose giving ``principal`` the ``role`` (adding the principal with ``public_key``).

    Raises:
        ConfigError: Unknown role, a new principal without a key, or a key of another principal.
    """
    policy = _next(store)
    if role not in policy.roles:
        raise ConfigError(f"unknown role {role!r}; roles: {', '.join(policy.roles)}")
    holder = policy.principals.get(principal)
    if holder is None:
        if public_key is None:
            raise ConfigError(f"{principal!r} is not a principal yet: give its --public-key "
                              "(ed25519:... from `rlhf-wizard contract keygen`)")
        policy.principals[principal] = Principal(public_key=public_key, roles=[role])
    else:
        if public_key is not None and public_key.strip() != holder.public_key:
            raise ConfigError(f"{principal!r} already has another public key; revoke it first")
        if role in holder.roles:
            raise ConfigError(f"{principal!r} already holds role {role!r}")
        holder.roles.append(role)
    return _stage(store, policy, f"grant {role} to {principal}", actor)


def propose_revoke(store: PolicyStore, principal: str, *, actor: str,
                   role: str | None = None) -> PendingPolicy:
    """Propose taking ``role`` from ``principal`` (every role, and its key, when None).

    Raises:
        ConfigError: Unknown principal, or a role it does not hold.
    """
    policy = _next(store)
    holder = policy.principals.get(principal)
    if holder is None:
        raise ConfigError(f"{principal!r} is not a principal; principals: "
                          f"{', '.join(policy.principals) or 'none'}")
    if role is None or holder.roles == [role]:
        del policy.principals[principal]
    elif role not in holder.roles:
        raise ConfigError(f"{principal!r} does not hold role {role!r} (holds {holder.roles})")
    else:
        holder.roles.remove(role)
    what = f"revoke {role or 'every role'} from {principal}"
    return _stage(store, policy, what, actor)
