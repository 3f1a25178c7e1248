"""The access check every flow makes first, before it touches the lake.

A flow started from the UI, a schedule or ``prefect deployment run`` carries its authority in its
parameters: ``token`` (a run token) or ``token_block`` (the name of a Prefect ``Secret`` block
holding one, for schedules). :func:`guard` checks it against the lake's installed policy
(:func:`rlhf_core.security.access.enforce.authorize`) and raises the one-line denial, which
fails the flow run before any task runs. Work nested in an allowed action needs no token of its
own: a sub-flow whose parent flow run was granted, or a flow the CLI runs in-process after its
own check, is allowed what the parent's grant covers (:func:`~rlhf_core.security.access.enforce.permit`).
The grant of each flow run is kept here, so audit entries written during the run name its
principal and role.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

from pydantic import BaseModel, SecretStr

from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.context import (
    Grant,
    lake_key,
    register_grant_provider,
    scoped_grant,
)
from rlhf_core.security.access.enforce import authorize, governing_lake, permit
from rlhf_core.security.access.store import ANCHOR_ENV, PolicyStore

_FLOW_GRANTS: dict[UUID, Grant] = {}

__all__ = ["guard", "token_from"]


def _flow_run() -> Any:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context.flow_run if context is not None else None


def _current_flow_grant() -> Grant | None:
    if not _FLOW_GRANTS:
        return None
    run = _flow_run()
    return _FLOW_GRANTS.get(run.id) if run is not None else None


register_grant_provider(_current_flow_grant)


def _parent_grant(run: Any) -> Grant | None:
    """The grant of the flow run this sub-flow run was called from, if it had one."""
    if run is None or run.parent_task_run_id is None or not _FLOW_GRANTS:
        return None
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        parent = client.read_task_run(run.parent_task_run_id)
    return _FLOW_GRANTS.get(parent.flow_run_id) if parent.flow_run_id else None


def token_from(token: SecretStr | str | None, token_block: str | None) -> str | None:
    """The token value: the parameter, else the Prefect ``Secret`` block named ``token_block``."""
    if isinstance(token, SecretStr):
        token = token.get_secret_value()
    if token:
        return token
    if token_block:
        from prefect.blocks.system import Secret

        return str(Secret.load(token_block).get())
    return None


def _contract_hash(path: str) -> str:
    """The contract's hash, for a token limited to one; an unreadable file matches no hash (and
    its content never reaches the denial)."""
    from rlhf_core.contract import load_contract
    from rlhf_core.errors import WizardError

    try:
        return load_contract(path).hash
    except (WizardError, OSError, ValueError) as exc:
        return f"an unreadable contract ({type(exc).__name__})"


def guard(params: BaseModel, action: str, *, contract: str | None = None,
          replaces: bool = False) -> Grant:
    """Check that this flow run may perform ``action``; call it first in the flow body.

    Reads ``lake_root`` and, when present, ``run_id``, ``dry_run``, ``token`` and ``token_block``
    from ``params``. ``run`` becomes ``run.unapproved`` for a dry run.

    Args:
        params: The flow's parameter model.
        action: The action the flow performs.
        contract: The contract path, hashed only if the token is limited to a contract.
        replaces: The flow overwrites its run id's results, so an existing run id also needs
            ``run.replace`` (looked up only when a policy is installed).

    Returns:
        The grant (open when no policy is installed).

    Raises:
        AccessDeniedError: The one-line denial (also in the audit log).
    """
    if action == "run" and getattr(params, "dry_run", False):
        action = "run.unapproved"
    lake = Lake(params.lake_root)  # type: ignore[attr-defined]
    run_id = getattr(params, "run_id", None)
    run = _flow_run()
    ambient = scoped_grant()
    if ambient is None and (os.environ.get(ANCHOR_ENV) or PolicyStore(governing_lake(lake)).is_installed()):
        ambient = _parent_grant(run)  # looked up only when a policy can decide anything
    if ambient is not None and ambient.lake == lake_key(lake.root):
        grant = permit(ambient, action, lake=lake, run_id=run_id)
    else:
        grant = authorize(
            action, token=token_from(getattr(params, "token", None), getattr(params, "token_block", None)),
            run_id=run_id, lake=lake,
            contract_hash=(lambda: _contract_hash(contract)) if contract else None,
            replaces_run=(lambda: bool(run_id) and bool(lake.part_paths(Table.RUNS, run_id))) if replaces else False)
    if run is not None:
        _FLOW_GRANTS[run.id] = grant
    return grant
