"""`rlhf-wizard keys {init,status,rotate}`: the lake's master key for text encrypted at rest."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rlhf_core.lake.store import Lake

app = typer.Typer(
    name="keys",
    help="The lake's master key (Parquet modular encryption of prompts and responses): init, status, rotate.",
    no_args_is_help=True,
)
_out = Console(highlight=False, soft_wrap=True)


def _passphrase(*, confirm: bool = False) -> bytes:
    """``RLHF_WIZARD_LAKE_PASSPHRASE``, else a prompt (twice when ``confirm``)."""
    from rlhf_core.errors import LakeKeyError
    from rlhf_core.lake.keyfile import LAKE_PASSPHRASE_ENV
    from rlhf_core.security.keys import passphrase_from

    return passphrase_from(LAKE_PASSPHRASE_ENV, "lake", confirm=confirm, error=LakeKeyError)


def _lake() -> Lake:
    from rlhf_core.lake.store import Lake

    return Lake.from_env()


@app.command("init")
def init() -> None:
    """Create the lake's master key: from now on prompts and responses are written encrypted.

    The passphrase comes from RLHF_WIZARD_LAKE_PASSPHRASE or a prompt; keep it (and a backup of
    keys/master.key): without both, the encrypted text cannot be read.
    Example: RLHF_WIZARD_LAKE_PASSPHRASE=... rlhf-wizard keys init
    """
    from rlhf_cli.access import require
    from rlhf_core.lake.rotation import init_master_key
    from rlhf_core.security.audit import AuditLog

    lake = _lake()
    require("keys.rotate", lake=lake)  # access policy (docs/security.md)
    header = init_master_key(lake, _passphrase(confirm=True))
    AuditLog(lake).append("lake_key_created", "keys/master.key", {"version": header.current})
    _out.print(f"lake master key version {header.current} written to "
               f"{escape(lake.path('keys', 'master.key'))}; text columns are encrypted from the next write")


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """Show whether the lake encrypts its text, the key version, and whether the passphrase opens it
    (exit code 1 when it does not).

    Example: rlhf-wizard keys status --json
    """
    from rlhf_core.lake.keyfile import LAKE_PASSPHRASE_ENV, lake_passphrase
    from rlhf_core.lake.rotation import encryption_status

    state = encryption_status(_lake(), lake_passphrase())
    record = {
        "encryption": "on" if state.enabled else "off", "key_file": state.key_path,
        "master_key_version": state.header.current if state.header else None,
        "versions_held": list(state.header.versions) if state.header else [],
        "passphrase_opens_key": state.unlocks, "encrypted_parts": state.encrypted_parts,
        "plaintext_text_parts": state.plain_text_parts, "problem": state.problem,
    }
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        raise typer.Exit(1 if state.unlocks is False else 0)
    if not state.enabled:
        _out.print("encryption: off (create a master key with `rlhf-wizard keys init`)")
        return
    opens = {True: "yes", False: "NO", None: f"not checked ({LAKE_PASSPHRASE_ENV} not set)"}[state.unlocks]
    _out.print(f"encryption: on, master key version {record['master_key_version']} "
               f"({escape(state.key_path)})")
    _out.print(f"passphrase opens the key: {opens}")
    _out.print(f"encrypted parts: {state.encrypted_parts}; text parts written before `keys init` "
               f"(plaintext): {state.plain_text_parts}")
    if state.problem:
        _out.print(f"[yellow]problem:[/yellow] {escape(state.problem)}")
    if state.unlocks is False:
        raise typer.Exit(1)


@app.command("rotate")
def rotate() -> None:
    """Replace the master key by a new version and re-wrap every part's data keys (no data rewritten).

    The old master key is destroyed once every part is re-wrapped; run it while no flow writes.
    Example: rlhf-wizard keys rotate
    """
    from rlhf_cli.access import require
    from rlhf_core.lake.rotation import rotate_master_key
    from rlhf_core.security.audit import AuditLog

    lake = _lake()
    require("keys.rotate", lake=lake)  # access policy (docs/security.md)
    report = rotate_master_key(lake, _passphrase())
    AuditLog(lake).append("lake_key_rotated", "keys/master.key", {
        "from_version": report.from_version, "to_version": report.to_version, "parts": report.parts})
    _out.print(f"master key rotated: version {report.from_version} -> {report.to_version}; "
               f"{report.parts} part(s) re-wrapped, no data rewritten"
               + (f"; {report.restored} interrupted re-wrap(s) recovered" if report.restored else ""))

