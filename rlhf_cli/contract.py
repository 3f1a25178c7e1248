"""`rlhf-wizard contract ...`: author, check, hash, sign, verify, diff and document contracts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rlhf_core.errors import ContractError, SignatureError

app = typer.Typer(
    name="contract",
    help="Reward contracts: init, lint, hash, keygen, sign, verify, diff, card.",
    no_args_is_help=True,
)
_out = Console(highlight=False, soft_wrap=True)

ContractPath = Annotated[Path, typer.Argument(help="Contract YAML file.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command("init")
def init(
    path: ContractPath,
    name: Annotated[str, typer.Option(help="Contract name.")] = "helpful-harmless",
    keys_dir: Annotated[
        Path | None,
        typer.Option(help="Also create one encrypted key pair per stakeholder here and "
                          "declare their public keys (passphrase from the environment)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter contract (3 stakeholders, weighted sum, 4 clauses).

    Example: rlhf-wizard contract init my.yaml --keys-dir keys/
    """
    from rlhf_core.contract.starter import starter_contract
    from rlhf_core.security.keys import atomic_write, generate_keypair, resolve_passphrase

    if path.exists() and not force:
        raise ContractError(f"{path}: file exists; choose another path or pass --force")
    keys: dict[str, str] = {}
    if keys_dir is not None:
        passphrase = resolve_passphrase(confirm=True)
        for holder in ("users", "safety_board", "operator"):
            keys[holder] = generate_keypair(keys_dir / f"{holder}.key.pem", passphrase,
                                            overwrite=force)
    atomic_write(path, starter_contract(name, keys).encode("utf-8"))
    _out.print(f"wrote {path}" + (f" and keys in {keys_dir}" if keys else ""))


@app.command("lint")
def lint(path: ContractPath, as_json: JsonFlag = False) -> None:
    """Load, type-check and statically check a contract (exit 1 on any error).

    Example: rlhf-wizard contract lint configs/contracts/demo.yaml --json
    """
    from rlhf_core.contract.build import load_contract
    from rlhf_core.contract.lint import lint_contract

    contract = load_contract(path)
    result = lint_contract(contract)
    if as_json:
        _print_json(result.to_dict())
    else:
        _out.print(f"{path}: {contract.spec.contract} {contract.spec.version} {contract.hash}")
        _out.print(
            f"  {len(contract.program.inputs)} inputs, {len(contract.program.stakeholders)} "
            f"stakeholders, {len(contract.program.clauses)} clauses, rule {contract.program.rule}"
        )
        for item in result.static:
            _out.print(f"  ENSURES {item.label}: {item.status} {item.detail}".rstrip())
        for warning in result.warnings:
            _out.print(f"  warning: {warning}")
    if result.errors:
        raise ContractError(f"{path}: " + "; ".join(result.errors))


@app.command("hash")
def hash_(path: ContractPath, as_json: JsonFlag = False) -> None:
    """Print the canonical hash (sha256 over RFC 8785 JSON of the normalised contract).

    Example: rlhf-wizard contract hash configs/contracts/demo.yaml
    """
    from rlhf_core.contract.build import load_contract

    contract = load_contract(path)
    if as_json:
        _print_json({"contract": contract.spec.contract, "version": contract.spec.version,
                     "hash": contract.hash, "path": str(path)})
    else:
        typer.echo(contract.hash)


@app.command("keygen")
def keygen(
    private_path: Annotated[Path, typer.Argument(help="Encrypted private key file to create.")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
) -> None:
    """Create an Ed25519 key pair; print the public key to put in the contract.

    The private key is encrypted PKCS#8 (mode 0600); the passphrase comes from
    RLHF_WIZARD_KEY_PASSPHRASE or a prompt. The public key is also written to <stem>.pub.

    Example: rlhf-wizard contract keygen keys/users.key.pem
    """
    from rlhf_core.security.keys import generate_keypair, resolve_passphrase

    public = generate_keypair(private_path, resolve_passphrase(confirm=True), overwrite=force)
    typer.echo(public)


@app.command("sign")
def sign(
    path: ContractPath,
    key: Annotated[Path, typer.Option(help="The stakeholder's encrypted private key.")],
    stakeholder: Annotated[str, typer.Option(help="Stakeholder name the key belongs to.")],
) -> None:
    """Add one stakeholder's signature to <stem>.contract.dsse.json beside the contract.

    Example: rlhf-wizard contract sign demo.yaml --key keys/users.key.pem --stakeholder users
    """
    from rlhf_core.security.approval import sign as sign_contract
    from rlhf_core.security.keys import resolve_passphrase

    report = sign_contract(path, key, stakeholder, resolve_passphrase())
    _out.print(f"signed by {stakeholder}; " + report.summary())


@app.command("verify")
def verify(path: ContractPath, as_json: JsonFlag = False) -> None:
    """Check every signature and the approval quorum (exit 1 when not approved).

    Example: rlhf-wizard contract verify configs/contracts/demo.yaml
    """
    from rlhf_core.security.approval import verify as verify_contract

    report = verify_contract(path)
    if as_json:
        _print_json(report.to_dict())
        if not report.approved:
            raise typer.Exit(1)
        return
    if not report.approved:
        raise SignatureError(f"{path}: {report.summary()}")
    typer.echo(report.summary())


@app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="Earlier contract version.")],
    new: Annotated[Path, typer.Argument(help="Later contract version.")],
    check: Annotated[bool, typer.Option(help="Require NEW.supersedes == hash(OLD).")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Show the semantic changes between two versions; check the supersedes link.

    Example: rlhf-wizard contract diff v1.yaml v2.yaml
    """
    from rlhf_core.contract.build import load_contract
    from rlhf_core.contract.diff import check_supersedes, diff_contracts

    a, b = load_contract(old), load_contract(new)
    result = diff_contracts(a, b)
    if as_json:
        _print_json(result.to_dict())
    else:
        typer.echo(f"{result.old_hash} -> {result.new_hash}")
        for change in result.changes:
            typer.echo(change.describe())
        if result.identical:
            typer.echo("no semantic change")
    if check:
        check_supersedes(a, b)


@app.command("card")
def card(
    path: ContractPath,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Write a Hugging Face style model-card section (Markdown + YAML front matter).

    Example: rlhf-wizard contract card configs/contracts/demo.yaml --out MODEL_CARD.md
    """
    from rlhf_core.contract.build import load_contract
    from rlhf_core.contract.card import ApprovalSummary, render_card
    from rlhf_core.contract.lint import lint_contract
    from rlhf_core.security.approval import verify as verify_contract
    from rlhf_core.security.keys import atomic_write

    contract = load_contract(path)
    report = verify_contract(path, contract)
    approval = ApprovalSummary(report.approved, report.quorum, report.approved_by,
                               report.failures)
    text = render_card(contract, approval, lint_contract(contract).static)
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write(out, text.encode("utf-8"))
        _out.print(f"wrote {out}")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))
