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
    help="Reward contracts: init, lint, hash, keygen, sign, verify, diff, card, calibrate.",
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
            _out.print(f"  ENSURES {item.label}: {item.status} {item.detail}".rstrip(),
                       markup=False)
        for warning in result.warnings:  # warnings quote contract text: no rich markup
            _out.print(f"  warning: {warning}", markup=False)
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

    Refuses a contract whose utility, penalty or reward can be NaN or infinite over the declared
    ranges (see `contract lint`) unless it declares `acknowledge: [nan_risk]`.

    Example: rlhf-wizard contract sign demo.yaml --key keys/users.key.pem --stakeholder users
    """
    from rlhf_cli.access import require
    from rlhf_core.security.approval import sign as sign_contract

    require("contract.sign")

    # The passphrase is asked for (or read from the environment) only once the contract has
    # passed its checks: a contract with an unacknowledged NaN risk is refused first.
    report = sign_contract(path, key, stakeholder)
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


@app.command("calibrate")
def calibrate(
    path: ContractPath,
    run: Annotated[str, typer.Option("--run", help="A scored run with preference labels.")],
    criterion: Annotated[str, typer.Option(help="The labels the weights should explain.")] = "better",
    out: Annotated[Path | None, typer.Option(
        dir_okay=False, help="New version's file (default: <stem>.calibrated-<criterion>.yaml).")] = None,
    version: Annotated[str | None, typer.Option(help="New version (default: next minor).")] = None,
    folds: Annotated[int, typer.Option(min=0, max=20,
                                       help="Prompt-grouped folds for held-out accuracy.")] = 5,
    force: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fit the weights that best explain a criterion's labels; write them as a new version.

    The new version supersedes the old hash, changes only the weights (and version), and
    carries no signatures: its stakeholders must approve it again.

    Example: rlhf-wizard contract calibrate configs/contracts/helpsteer.yaml --run nightly --criterion better
    """
    from rlhf_cli.access import require
    from rlhf_core.contract.build import load_contract, load_contract_text
    from rlhf_core.contract.diff import diff_contracts
    from rlhf_core.contract.revise import revise_weights
    from rlhf_core.evaluate.calibrate import CalibrationConfig
    from rlhf_core.evaluate.calibration_run import calibrate_criterion, write_calibration
    from rlhf_core.evaluate.run_data import load_run_pairs
    from rlhf_core.lake.store import Lake
    from rlhf_core.security.keys import atomic_write

    target = out or path.with_name(f"{path.stem}.calibrated-{criterion}.yaml")
    if target.resolve() == path.resolve():
        raise ContractError(f"{path}: --out must differ from the contract; a new version is a "
                            "new file")
    if target.exists() and not force:
        raise ContractError(f"{target} already exists; pass --force to replace it or choose --out")
    old = load_contract(path)
    lake = Lake.from_env()
    require("run", run_id=run, lake=lake)
    pairs = load_run_pairs(lake, run, old.program, [criterion])
    fitted = calibrate_criterion(pairs, old.program, criterion, CalibrationConfig(folds=folds))
    record = write_calibration(lake, fitted)
    r = fitted.result
    held = (f"held-out accuracy {r.contract_heldout_accuracy:.1%} -> {r.heldout_accuracy:.1%}"
            if r.heldout_accuracy is not None else "no held-out folds")
    note = (f"Weights calibrated to criterion '{criterion}' of run {run} ({held}, {r.pairs} "
            f"pairs).\nSignatures of the previous version do not carry over: approve this one again.")
    text = revise_weights(old, r.weights, version=version, note=note)
    atomic_write(target, text.encode("utf-8"))
    new = load_contract_text(text, file=str(target))
    changes = diff_contracts(old, new)
    if as_json:
        _print_json({"out": str(target), "record": record, **fitted.to_dict(),
                     "new_hash": new.hash, "diff": changes.to_dict()})
        return
    _out.print(f"calibrated {old.spec.contract} to [bold]{criterion}[/bold] on run {run} "
               f"({r.pairs:,} strict pairs, {r.method}): {held}")
    for change in changes.changes:
        _out.print(f"  {change.describe()}")
    _out.print(f"wrote {target} (version {new.spec.version}, {new.hash}); it is unapproved until "
               f"its stakeholders sign it: rlhf-wizard contract sign {target} --key ...")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))
