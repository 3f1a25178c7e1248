"""`rlhf-wizard access {init,grant,revoke,sign,discard,show,check,token}`: who may do what.

Also :func:`require`, the check every other command makes before doing anything: with an
installed policy, the user is identified by ``--token`` / ``RLHF_WIZARD_TOKEN``, or by the key in
``RLHF_WIZARD_PRINCIPAL_KEY`` (a five-minute token is minted for the command); with none, the
platform is in open mode and every command runs as before.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="access",
    help="The signed access policy and run tokens: init, grant, revoke, sign, show, check, token.",
    no_args_is_help=True,
)
_out = Console(highlight=False, soft_wrap=True)

KeyOption = Annotated[Path, typer.Option("--key", exists=True, dir_okay=False,
                                         help="Your encrypted Ed25519 private key (passphrase "
                                              "from RLHF_WIZARD_KEY_PASSPHRASE).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@dataclass
class _Invocation:
    """One command line: its ``--token`` and what stays entered until the command ends."""

    token: str | None
    resources: ExitStack = field(default_factory=ExitStack)


_INVOCATION: ContextVar[_Invocation | None] = ContextVar("rlhf_wizard_invocation", default=None)


def begin_invocation(context: typer.Context, token: str | None) -> None:
    """Called by the root command: remember ``--token``, and end the command's grant with it."""
    invocation = _Invocation(token)
    reset = _INVOCATION.set(invocation)

    def close() -> None:
        invocation.resources.close()
        _INVOCATION.reset(reset)

    context.call_on_close(close)


def require(action: str, *, run_id: str | None = None, contract_hash: str | None = None,
            replaces: bool = False, lake: Any = None, key_path: Path | None = None) -> Any:
    """Check that the command's user may perform ``action`` (see the module docstring).

    Args:
        action: The action (``run``, ``export``, ``audit.read`` ...).
        run_id: The run it is for.
        contract_hash: The contract it uses.
        replaces: The command overwrites ``run_id``'s results, so an existing run id also needs
            ``run.replace``.
        lake: The lake it works on (default ``RLHF_WIZARD_HOME``).
        key_path: Identify the user by this key instead of the environment.

    The grant stays active until the command ends, so its audit entries name the principal and
    role, and a flow it runs in-process is allowed what the grant covers.

    Raises:
        AccessDeniedError: The one-line denial (also in the audit log).
    """
    from rlhf_core.lake.catalog import Table
    from rlhf_core.lake.store import Lake
    from rlhf_core.security.access.context import acting_as
    from rlhf_core.security.access.enforce import authorize
    from rlhf_core.security.access.session import invocation_token

    target = lake if isinstance(lake, Lake) else Lake(lake)
    invocation = _INVOCATION.get()
    token = invocation_token(action, lake=target, run_id=run_id, key_path=key_path,
                             token=invocation.token if invocation else None)
    grant = authorize(action, token=token, run_id=run_id, contract_hash=contract_hash,
                      lake=target, replaces_run=(lambda: bool(run_id) and bool(
                          target.part_paths(Table.RUNS, run_id))) if replaces else False)
    if not grant.open and invocation is not None:
        invocation.resources.enter_context(acting_as(grant))
    return grant


def _store() -> Any:
    from rlhf_core.lake.store import Lake
    from rlhf_core.security.access.enforce import governing_lake
    from rlhf_core.security.access.store import PolicyStore

    return PolicyStore(governing_lake(Lake.from_env()))


def _sign(store: Any, key: Path) -> None:
    from rlhf_core.security.keys import load_private_key, resolve_passphrase

    pending, installed = store.sign_pending(load_private_key(key, resolve_passphrase()))
    if installed:
        _out.print(f"[green]installed[/green] access policy v{pending.policy.version} "
                   f"{pending.policy.hash()} in {store.lake.root}: {pending.approval.summary()}")
    else:
        _out.print(f"signed; {pending.approval.summary()}")


@app.command("init")
def init(policy: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                help="Policy YAML (version 1).")],
         key: KeyOption) -> None:
    """Propose a policy as version 1 of this lake's policy and sign it with an admin's key.

    It is installed once a quorum of its own admins has signed (`access sign`).
    Example: rlhf-wizard access init my-policy.yaml --key keys/alice.key.pem
    """
    from rlhf_core.security.access.changes import propose_initial
    from rlhf_core.security.access.policy import load_policy
    from rlhf_core.security.access.session import principal_of
    from rlhf_core.security.keys import load_private_key, resolve_passphrase

    store = _store()
    private = load_private_key(key, resolve_passphrase())
    actor = principal_of(load_policy(policy), private, str(key))
    pending = propose_initial(store, policy, actor=actor)
    _out.print(f"proposed access policy v1 {pending.policy.hash()} in {store.lake.root}")
    _sign(store, key)


@app.command("grant")
def grant(principal: Annotated[str, typer.Option(help="Principal name.")],
          role: Annotated[str, typer.Option(help="Role to give.")],
          public_key: Annotated[str | None, typer.Option(
              help="The principal's ed25519:... key (for a new principal).")] = None,
          key: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help=(
              "Your admin key: identifies you and signs the proposal."))] = None) -> None:
    """Propose the next policy version giving PRINCIPAL the ROLE (needs `policy.change`).

    It takes effect once a quorum of the current version's admins has signed it.
    Example: rlhf-wizard access grant --principal carol --role operator --public-key ed25519:... --key keys/alice.key.pem
    """
    from rlhf_core.security.access.changes import propose_grant

    who = require("policy.change", key_path=key)
    pending = propose_grant(_store(), principal, role, actor=who.principal, public_key=public_key)
    _out.print(f"proposed access policy v{pending.policy.version}: grant {role} to {principal}")
    if key is not None:
        _sign(_store(), key)


@app.command("revoke")
def revoke(principal: Annotated[str, typer.Option(help="Principal name.")],
           role: Annotated[str | None, typer.Option(help="Role to take (default: every role, "
                                                         "and the principal itself).")] = None,
           key: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help=(
               "Your admin key: identifies you and signs the proposal."))] = None) -> None:
    """Propose the next policy version without ROLE for PRINCIPAL (needs `policy.change`).

    Example: rlhf-wizard access revoke --principal carol --key keys/alice.key.pem
    """
    from rlhf_core.security.access.changes import propose_revoke

    who = require("policy.change", key_path=key)
    pending = propose_revoke(_store(), principal, actor=who.principal, role=role)
    _out.print(f"proposed access policy v{pending.policy.version}: revoke "
               f"{role or 'every role'} from {principal}")
    if key is not None:
        _sign(_store(), key)


@app.command("sign")
def sign(key: KeyOption) -> None:
    """Approve the pending policy version with your admin key; installed at the quorum.

    Only admins of the current version may approve the next one (no self-promotion).
    Example: rlhf-wizard access sign --key keys/bob.key.pem
    """
    _sign(_store(), key)


@app.command("discard")
def discard(key: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                     help="Your admin key.")] = None) -> None:
    """Withdraw the pending policy version and its signatures (needs `policy.change`)."""
    require("policy.change", key_path=key)
    _out.print("pending version discarded" if _store().discard_pending() else "nothing pending")


@app.command("show")
def show(as_json: JsonFlag = False) -> None:
    """Show the installed policy (version, approvals, roles, principals) and any pending one.

    Example: rlhf-wizard access show --json
    """
    store = _store()
    installed, pending = store.installed(), store.pending()
    if as_json:
        typer.echo(json.dumps({
            "lake": store.lake.root, "installed": installed is not None,
            "policy": installed.policy.model_dump(mode="json") if installed else None,
            "hash": installed.hash if installed else None,
            "approved_by": list(installed.approval.approved_by) if installed else [],
            "anchored": installed.anchored if installed else False,
            "genesis": installed.genesis if installed else None,
            "pending": ({"version": pending.policy.version, "hash": pending.policy.hash(),
                         "approval": pending.approval.summary()} if pending else None)}, indent=2))
        return
    if installed is None:
        _out.print(f"no access policy in {store.lake.root}: open mode (anyone may do anything); "
                   "install one with `rlhf-wizard access init`")
    else:
        policy = installed.policy
        _out.print(f"access policy v{policy.version} {installed.hash} ({store.lake.root}): "
                   f"{installed.approval.summary()}; quorum for the next version "
                   f"{policy.quorum}; audience {policy.tokens.audience!r}"
                   + ("; anchor pinned" if installed.anchored else
                      f"; pin it with RLHF_WIZARD_ACCESS_ANCHOR={installed.genesis}"))
        table = Table("principal", "roles", "permissions", header_style="bold")
        for name, holder in policy.principals.items():
            table.add_row(name, ", ".join(holder.roles), ", ".join(sorted(policy.permissions_of(name))))
        _out.print(table)
    if pending is not None:
        _out.print(f"pending v{pending.policy.version} {pending.policy.hash()}: "
                   f"{pending.approval.summary()}")


@app.command("check")
def check(action: Annotated[str, typer.Option(help="The action, e.g. run, export, audit.read.")],
          principal: Annotated[str | None, typer.Option(help="Ask for this principal.")] = None,
          token: Annotated[str | None, typer.Option(help="Ask for this token (default: "
                                                         "RLHF_WIZARD_TOKEN).")] = None,
          run_id: Annotated[str | None, typer.Option(help="The run the action is for.")] = None) -> None:
    """Say whether a principal or token may perform ACTION (exit 1 if not); changes nothing.

    Example: rlhf-wizard access check --principal carol --action export
    """
    import os

    from rlhf_core.errors import AccessDeniedError
    from rlhf_core.security.access.enforce import authorize
    from rlhf_core.security.access.session import TOKEN_ENV

    try:
        granted = authorize(action, token=token or (None if principal else os.environ.get(TOKEN_ENV)),
                            principal=principal, run_id=run_id, lake=_store().lake, record=False)
    except AccessDeniedError as exc:
        _out.print(str(exc).replace("access denied", "[red]denied[/red]", 1))
        raise typer.Exit(code=1) from None
    mode = "open mode: no policy installed" if granted.open else f"role {granted.role}"
    _out.print(f"[green]allowed[/green]: {granted.principal} may {action} ({mode})")


@app.command("token")
def token(role: Annotated[str, typer.Option(help="The role the token acts in.")],
          key: KeyOption,
          ttl: Annotated[str, typer.Option(help="Lifetime: 90s, 15m, 1h, 2d.")] = "1h",
          run_id: Annotated[str | None, typer.Option(help="Limit the token to this run id.")] = None,
          contract_hash: Annotated[str | None, typer.Option(
              help="Limit the token to this contract hash.")] = None) -> None:
    """Print a run token (compact JWS, EdDSA) signed with your key; single-use per run id.

    Give it as a flow's `token` parameter, or keep it in a Prefect Secret block (`token_block`).

    Example: rlhf-wizard access token --role operator --ttl 1h --run-id nightly --key keys/op.key.pem
    """
    from rlhf_core.errors import ConfigError
    from rlhf_core.security.access.session import issue, parse_ttl

    try:
        seconds = parse_ttl(ttl)
    except ValueError as exc:
        raise ConfigError(str(exc), "<command line>") from None
    issued = issue(key, role=role, ttl_seconds=seconds, lake=_store().lake, run_id=run_id,
                   contract_hash=contract_hash)
    typer.echo(issued.token)
