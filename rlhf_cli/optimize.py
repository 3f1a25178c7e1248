"""CLI: ``fit`` (Bradley–Terry reward models), ``optimize`` (Pareto, KL policy, pairs), ``export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
    from flows.fit_reward_models import FitRewardModelsParams, fit_reward_models_with
    from ops.runtime import DaskConfig, prefect_api

    params = FitRewardModelsParams(run_id=run_id, lake_root=lake_root_path(), criteria=criteria, seeds=seeds,
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
    from flows.optimize_policy import OptimizePolicyParams, optimize_policy
    from ops.runtime import prefect_api
    from rlhf_core.report.summary import optimization_lines

    params = OptimizePolicyParams(contract=str(contract.resolve()), run_id=run_id, lake_root=lake_root_path(),
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


@app.command("export")
def export(
    run_id: Annotated[str, typer.Argument(help="Run whose DPO pairs are exported.")],
    out: Annotated[Path, typer.Option(help="Output file (.jsonl or .parquet).")],
) -> None:
    """Export a run's TRL DPO pairs (prompt, chosen, rejected + ids, rewards, hash) to a file.

    Example: rlhf-wizard export demo-20261129T120000 --out pairs.jsonl
    """
    from rlhf_core.optimize.export import export_pairs

    written = export_pairs(run_id, out)
    _out.print(f"wrote {written['rows']} pairs of run {run_id} to {written['path']} "
               f"(contract {written['contract_hash']})")
