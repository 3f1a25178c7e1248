"""Who is acting right now: the active :class:`Grant`, so audit entries name principal and role.

A grant is active inside :func:`acting_as` (the CLI enters it for the rest of a command), or
through a registered provider: the orchestration layer registers one that finds the grant of
the running flow (:mod:`ops.access`), which keeps this module free of Prefect. Nothing here
imports the rest of the access package, so the audit log can import it without a cycle.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Grant", "acting_as", "active_grant", "lake_key", "register_grant_provider", "scoped_grant"]


@dataclass(frozen=True)
class Grant:
    """Permission to perform one action, as decided by :func:`~.enforce.authorize`.

    Attributes:
        action: The action granted.
        principal: Who acts (the OS user in open mode).
        role: The role acted in (None in open mode).
        permissions: What work nested in this action (a flow's sub-flows) may do: the token's
            actions that the role still has, or the principal's permissions.
        lake: The lake the grant is for (see :func:`lake_key`).
        open: True when no policy is installed (everything is allowed, as before policies).
        policy_version: The policy version that decided (None in open mode).
        jti: The token id (None without a token).
        limit_run_id: The run the token is limited to, if any.
        limit_contract_hash: The contract the token is limited to, if any.
    """

    action: str
    principal: str
    role: str | None
    permissions: frozenset[str]
    lake: str
    open: bool = False
    policy_version: int | None = None
    jti: str | None = None
    limit_run_id: str | None = None
    limit_contract_hash: str | None = None


_ACTIVE: ContextVar[Grant | None] = ContextVar("rlhf_wizard_access_grant", default=None)
_PROVIDERS: list[Callable[[], Grant | None]] = []


def lake_key(root: str | os.PathLike[str]) -> str:
    """A lake root in one comparable form: absolute local path, or the URI as given."""
    text = os.fspath(root)
    return text.rstrip("/") if "://" in text else os.path.realpath(os.path.expanduser(text))


@contextmanager
def acting_as(grant: Grant) -> Iterator[Grant]:
    """Make ``grant`` the active one until the block ends."""
    token = _ACTIVE.set(grant)
    try:
        yield grant
    finally:
        _ACTIVE.reset(token)


def register_grant_provider(provider: Callable[[], Grant | None]) -> None:
    """Add a function consulted when no grant is active in this context (idempotent)."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def scoped_grant() -> Grant | None:
    """The grant entered with :func:`acting_as` in this context (providers not consulted)."""
    return _ACTIVE.get()


def active_grant() -> Grant | None:
    """The grant of the current context, else the first a provider returns, else None."""
    grant = _ACTIVE.get()
    if grant is not None:
        return grant
    for provider in _PROVIDERS:
        found = provider()
        if found is not None:
            return found
    return None
