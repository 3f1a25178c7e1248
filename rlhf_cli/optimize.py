"""CLI: ``fit`` (Bradley–Terry reward models), ``optimize`` (Pareto, KL policy, pairs), ``export``
(trainer formats, signed dataset folders) and ``export verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer import Context
from typer.core import TyperGroup

from rlhf_cli.access import require
from rlhf_cli.pipeline import (
    VerboseFlag,
    console_without_tracebacks,
    lake_root_path,
    show_library_logs,
)

app = typer.Typer()
_out = Console(highlight=False, soft_wrap=True)


@app.command("fit")
def fit(
    run_id: Annotated[str, typer.Argument(help="Ingested run whose preferences are modelled.")],
    criteria: Annotated[list[str], typer.Option("--criterion", help="Label column (repeatable).")] = ["better"],  # noqa: B006
    seeds: Annotated[list[int], typer.Option("--seed", help="Seed (repeatable).")] = [0],  # noqa: B006
    l2: Annotated[list[float], typer.Option("--l2", help="L2 strength to try (repeatable).")] = [0.01, 0.1],  # noqa: B006
    k_folds: Annotated[int, typer.Option(help="Prompt-grouped folds.")] = 5,
    optimizer: Annotated[str, typer.Option(help="lbfgs | adam")] = "lbfgs",
    hidden: Annotated[int, typer.Option(help="0: linear head; >0: MLP width.")] = 0,
    workers: Annotated[int, typer.Option(help="Local Dask worker processes.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    verbose: VerboseFlag = False,
) -> None:
    """Fit one Bradley–Terry reward model per criterion (CV on Dask); add rm_<criterion> columns.

    Example: rlhf-wizard fit pku-1 --criterion better --criterion safer --seed 0 --seed 1
    """
    require("run", run_id=run_id)
    from flows.fit_reward_models import FitRewardModelsParams, fit_reward_models_with
    from ops.confinement import confine_run
    from ops.runtime import DaskConfig, prefect_api

    lake_root = confine_run("rlhf-wizard fit", lake_root=lake_root_path())["lake_root"]
    params = FitRewardModelsParams(run_id=run_id, lake_root=lake_root, criteria=criteria, seeds=seeds,
                                   l2_grid=l2, k_folds=k_folds, optimizer=optimizer, hidden=hidden)
    show_library_logs(verbose)
    console_without_tracebacks()
    with prefect_api():
        result = fit_reward_models_with(params, DaskConfig(n_workers=workers))
    if as_json:
        typer.echo(json.dumps(result, default=str, indent=2))
        return
    for criterion, best in result["models"].items():
        _out.print(f"{criterion}: l2={best['l2']} seed={best['seed']} held-out accuracy "
                   f"{best['val_accuracy']:.3f}, log-loss {best['val_log_loss']:.3f} -> column rm_{criterion}")


@app.command("optimize")
def optimize(
    run_id: Annotated[str, typer.Argument(help="Scored run.")],
    contract: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Contract YAML.")],
    cost_column: Annotated[str, typer.Option(help="Scores column the policy constrains.")] = "penalty",
    budget: Annotated[float | None, typer.Option(help="Expected-cost budget (default: half the reference).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    verbose: VerboseFlag = False,
) -> None:
    """Pareto front + Nash point, constrained KL policy and DPO pairs for a scored run.

    Example: rlhf-wizard optimize demo-20261129T120000 --contract configs/contracts/demo.yaml
    """
    require("run", run_id=run_id)
    from flows.optimize_policy import OptimizePolicyParams, optimize_policy
    from ops.confinement import confine_run
    from ops.runtime import prefect_api
    from rlhf_core.report.summary import optimization_lines

    checked = confine_run("rlhf-wizard optimize", data={"--contract": str(contract)},
                          lake_root=lake_root_path(), details={"run_id": run_id})
    params = OptimizePolicyParams(contract=checked["--contract"], run_id=run_id, lake_root=checked["lake_root"],
                                  cost_column=cost_column, budget=budget)
    show_library_logs(verbose)
    console_without_tracebacks()
    with prefect_api():
        result = optimize_policy(params)
    if as_json:
        typer.echo(json.dumps(result, default=str, indent=2))
        return
    from rich.markdown import Markdown

    _out.print(Markdown("\n".join(optimization_lines(result))))


class _ExportGroup(TyperGroup):
    """``export``'s sub-commands, where a first argument that names none is a run id.

    ``rlhf-wizard export RUN --out f.jsonl`` is short for ``rlhf-wizard export pairs RUN --out
    f.jsonl`` (the command predates ``export verify``); a run literally called ``verify`` or
    ``pairs`` needs the long form.
    """

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [_DEFAULT_EXPORT, *args]
        return super().parse_args(ctx, args)


_DEFAULT_EXPORT = "pairs"
export_app = typer.Typer(cls=_ExportGroup, no_args_is_help=True, help=(
    "Export a run's pairs for a trainer (`export RUN --format F --out FILE_OR_DIR`, short for "
    "`export pairs RUN ...`) or verify a signed export folder (`export verify DIR`)."))
app.add_typer(export_app, name="export")


@export_app.command(_DEFAULT_EXPORT)
def export(
    run_id: Annotated[str, typer.Argument(help="Run whose pairs are exported.")],
    out: Annotated[Path, typer.Option(help="A .jsonl or .parquet file, or a folder (a signed "
                                          "Hugging Face dataset folder).")],
    format: Annotated[str, typer.Option(
        "--format", help="trl | trl-conversational | kto | reward | openrlhf | nemo | rewardbench | "
                         "hf (folder only).")] = "trl",
    test_share: Annotated[float, typer.Option(help="Folder: share of prompts in the test split, "
                                                   "in [0, 1).")] = 0.1,
    seed: Annotated[int, typer.Option(help="Folder: seed of the split by prompt.")] = 0,
    license_id: Annotated[str | None, typer.Option(
        "--license", help="License id for the card (default: the source dataset's, else unknown).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Export a run's pairs in a trainer format (one file, or a signed dataset folder).

    A folder is a Hugging Face dataset (data/train-*, data/test-* split by prompt, README card,
    manifest signed with the operator key); a single file's SHA-256 goes to the audit log. A run
    whose pairs failed the contract's length gate (selection.max_chosen_longer) is refused.

    Examples: rlhf-wizard export demo-20261129T120000 --out pairs.jsonl;
    rlhf-wizard export demo-20261129T120000 --format hf --out exports/demo --test-share 0.1
    """
    require("export", run_id=run_id)
    from ops.confinement import confine_run
    from rlhf_core.optimize.export import export_pairs

    out = Path(confine_run("rlhf-wizard export", outputs={"--out": str(out)},
                           details={"run_id": run_id})["--out"])
    written = export_pairs(run_id, out, format=format, test_share=test_share, seed=seed,
                           license_id=license_id)
    if as_json:
        typer.echo(json.dumps(written, indent=2))
        return
    what = "pairs" if written["format"] != "kto" else "examples"
    if "splits" in written:
        splits = ", ".join(f"{name} {rows}" for name, rows in written["splits"].items())
        _out.print(f"wrote {written['rows']} {what} of run {run_id} ({written['format']}: {splits}) to "
                   f"{written['path']}, manifest signed by key {written['key_id'][:16]}… "
                   f"(contract {written['contract_hash']})")
    else:
        _out.print(f"wrote {written['rows']} {what} of run {run_id} ({written['format']}) to "
                   f"{written['path']} (contract {written['contract_hash']})")


@export_app.command("verify")
def verify(
    folder: Annotated[Path, typer.Argument(help="An export folder (with manifest.dsse.json).")],
    pubkey: Annotated[list[str] | None, typer.Option(
        "--pubkey", help="Trusted operator public key: a file or 'ed25519:<base64>' (repeatable); "
                         "default: the lake's keys/operator.pub.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check an export folder's signed manifest: any changed, missing or added byte fails.

    Example: rlhf-wizard export verify exports/demo --pubkey operator.pub
    """
    from rlhf_core.optimize.export import verify_folder
    from rlhf_core.security.keys import key_id_of, parse_public_key

    keys = None
    if pubkey:
        keys = {}
        for item in pubkey:
            path = Path(item)
            public = parse_public_key(path.read_text(encoding="utf-8") if path.is_file() else item, where=item)
            keys[key_id_of(public)] = public
    checked = verify_folder(folder, keys)
    if as_json:
        typer.echo(json.dumps({"ok": True, "path": checked.path, "files": checked.files,
                               "key_id": checked.key_id}, indent=2))
        return
    _out.print(f"ok: {checked.path}: {checked.files} files match the manifest signed by key "
               f"{checked.key_id[:16]}…")
