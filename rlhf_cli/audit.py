"""`rlhf-wizard audit {log,verify}`: show and verify the signed, hash-chained audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    name="audit",
    help="The append-only, signed audit log: log, verify.",
    no_args_is_help=True,
)
_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)
DEFAULT_ROWS = 50


@app.command("log")
def log(
    as_json: Annotated[bool, typer.Option("--json", help="Print entries as a JSON array.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show only the last N entries "
                                              f"(table output shows {DEFAULT_ROWS} by default).")] = None,
) -> None:
    """Show the audit log, newest last.

    Example: rlhf-wizard audit log --limit 20
    """
    from rlhf_cli.access import require
    from rlhf_core.security.audit import AuditLog

    require("audit.read")
    entries = AuditLog().entries()
    shown = limit if (limit or as_json) else DEFAULT_ROWS
    if shown is not None:
        entries = entries[-shown:]
    if as_json:
        records = [{**e.body(), "hash": e.hash, "signature": e.signature} for e in entries]
        typer.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    view = Table(header_style="bold")
    for name in ("seq", "timestamp", "kind"):
        view.add_column(name, no_wrap=True)
    for name in ("actor", "subject", "details", "hash"):
        view.add_column(name, overflow="fold")
    for e in entries:
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
        details = details if len(details) <= 60 else details[:57] + "..."
        view.add_row(str(e.seq), e.timestamp[:19] + "Z", e.kind, escape(e.actor), escape(e.subject),
                     escape(details), e.hash[:12])
    _out.print(view)
    _out.print(f"[dim]{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} shown[/dim]")


@app.command("verify")
def verify(
    pubkey: Annotated[list[str] | None, typer.Option(
        "--pubkey", help="Trusted operator public key: a file or 'ed25519:<base64>' (repeatable); "
                         "default: the lake's keys/operator.pub.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every entry's hash, signature, sequence and chain, and the signed checkpoint.

    Exits 1 and says where on any edit, deletion, reordering, forgery or cut tail.
    Example: rlhf-wizard audit verify --pubkey operator.pub
    """
    from rlhf_cli.access import require
    from rlhf_core.security.audit_verify import verify_audit
    from rlhf_core.security.keys import key_id_of, parse_public_key

    require("audit.read")

    keys = None
    if pubkey:
        keys = {}
        for item in pubkey:
            path = Path(item)
            text = path.read_text(encoding="utf-8") if path.is_file() else item
            public = parse_public_key(text, where=item)
            keys[key_id_of(public)] = public
    report = verify_audit(public_keys=keys)
    if as_json:
        typer.echo(json.dumps({
            "ok": report.ok, "path": report.path, "entries": report.entries,
            "last_seq": report.last_seq, "last_hash": report.last_hash,
            "checkpoint_seq": report.checkpoint_seq,
            "problems": [str(p) for p in report.problems], "notes": report.notes,
        }, indent=2))
    elif report.ok:
        if report.entries:
            _out.print(f"[green]audit log OK[/green]: {report.entries} entries (seq 0..{report.last_seq}), "
                       f"last hash {report.last_hash}, checkpoint seq {report.checkpoint_seq}")
        else:
            _out.print(f"[green]audit log OK[/green]: empty ({report.path})")
        for note in report.notes:
            _out.print(f"[dim]note: {note}[/dim]")
    else:
        for problem in report.problems:
            _err.print(f"[red]error:[/red] {escape(str(problem))}")
        _err.print(f"[red]audit verify FAILED[/red]: {len(report.problems)} problem(s) in {report.path}")
    if not report.ok:
        raise typer.Exit(code=1)
