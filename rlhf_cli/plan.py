"""CLI command ``rlhf-wizard plan CAMPAIGN.yaml`` / ``rlhf-wizard plan --psplib FILE``.

The search options, their choices and their defaults come from the planner's configuration
(:mod:`rlhf_core.planner.params`, :mod:`rlhf_core.planner.config`): an algorithm option that is
left out keeps the chosen algorithm's default, and the configuration itself refuses values out of
range or options the algorithm does not have. ``--local`` (the default) imports no Prefect.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlhf_cli.access import require
from rlhf_core.errors import PlannerError
from rlhf_core.planner.config import SearchConfig, search_config
from rlhf_core.planner.params import PARAMS_CLASSES, AlgorithmName, SGSName

app = typer.Typer()
_out = Console(highlight=False, soft_wrap=True)
_DEFAULTS = SearchConfig()


def _help(field: str, text: str | None = None) -> str:
    """A field's description and its default under every algorithm that has it."""
    owners = {name: cls.model_fields[field] for name, cls in PARAMS_CLASSES.items() if field in cls.model_fields}
    desc = text or next(iter(owners.values())).description or field
    shown = [f"{name} {info.default}" for name, info in owners.items() if info.default_factory is None]
    return f"{desc} (default: {', '.join(shown)})."


def _algorithm_help() -> str:
    return " ".join(f"{name}: {(cls.__doc__ or '').splitlines()[0]}" for name, cls in PARAMS_CLASSES.items())


def _run_id() -> str:
    return f"plan-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@app.command("plan")
def plan(
    campaign: Annotated[Path | None, typer.Argument(help="Campaign YAML (configs/campaigns/*.yaml).")] = None,
    psplib: Annotated[Path | None, typer.Option("--psplib", help="Plan a PSPLIB .sm instance instead.")] = None,
    algorithm: Annotated[AlgorithmName, typer.Option(help=_algorithm_help())] = _DEFAULTS.algorithm,
    budget: Annotated[int, typer.Option(help=SearchConfig.model_fields["budget"].description)] = _DEFAULTS.budget,
    islands: Annotated[int | None, typer.Option(help=_help("islands"))] = None,
    pop_size: Annotated[int | None, typer.Option("--pop-size", "--population", help=_help(
        "pop_size", "individuals per island (qiea), in each population (bpga), in the population (ga)"))] = None,
    window_moves: Annotated[int | None, typer.Option(help=_help(
        "window_moves", "children per island (qiea) or half-generation (bpga: default a tenth of "
        "--pop-size) that re-solve one window of their parent's order"))] = None,
    restart_after: Annotated[int | None, typer.Option(help=_help("restart_after"))] = None,
    parallel_share: Annotated[float | None, typer.Option(help=_help(
        "parallel_share", "share of children decoded by the parallel SGS"))] = None,
    sgs: Annotated[SGSName | None, typer.Option(help=_help("sgs"))] = None,
    seed: Annotated[int, typer.Option(help=SearchConfig.model_fields["seed"].description)] = _DEFAULTS.seed,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: generated).")] = None,
    lake: Annotated[str | None, typer.Option(help="Lake root (default: $RLHF_WIZARD_HOME or ./.wizard).")] = None,
    flow: Annotated[bool, typer.Option("--flow/--local", help="Run the plan-campaign flow (islands on Dask) or in this process.")] = False,
    workers: Annotated[int, typer.Option(help="Dask workers for --flow.")] = 2,
) -> None:
    """Schedule a campaign (or PSPLIB instance) to minimise makespan; write plan, Gantt and report."""
    options = {"islands": islands, "pop_size": pop_size, "window_moves": window_moves,
               "restart_after": restart_after, "parallel_share": parallel_share, "sgs": sgs}
    given = {name: value for name, value in options.items() if value is not None}
    config = search_config(algorithm, budget=budget, seed=seed, where="<command line>", **given)
    summary = run_plan(campaign, psplib, config, run_id or _run_id(), lake, flow, workers)
    _print(summary)


def run_plan(
    campaign: Path | None, psplib: Path | None, config: SearchConfig, run_id: str, lake: str | None,
    flow: bool, workers: int,
) -> dict[str, Any]:
    """Plan in this process (no Prefect imported) or through the ``plan-campaign`` flow.

    Raises:
        PlannerError: not exactly one of ``campaign`` and ``psplib``, or an invalid project.
    """
    from rlhf_core.lake.store import Lake
    from rlhf_core.planner.source import PlanSource

    if (campaign is None) == (psplib is None):
        raise PlannerError("give exactly one of CAMPAIGN.yaml or --psplib FILE")
    source = PlanSource(path=str(campaign or psplib), kind="campaign" if campaign else "psplib")
    root = Lake(lake).root
    require("plan", run_id=run_id, lake=root)
    if not flow:
        from rlhf_core.planner.publish import plan_and_publish

        return plan_and_publish(source, config, run_id, root)
    from ops.confinement import confine_run

    checked = confine_run("rlhf-wizard plan", data={"source": source.path}, lake_root=root,
                          details={"run_id": run_id})
    source, root = source.model_copy(update={"path": checked["source"]}), checked["lake_root"]
    source.load()  # report an invalid project before a flow run starts
    from flows.plan_campaign import PlanCampaignParams, plan_campaign_with
    from ops.runtime import DaskConfig, prefect_api

    params = PlanCampaignParams(source=source, search=config, run_id=run_id, lake_root=root)
    with prefect_api():
        return plan_campaign_with(params, DaskConfig(n_workers=workers))


def _print(summary: dict[str, Any]) -> None:
    table = Table(title=f"plan {summary['project']} (run {summary['run_id']})")
    for col in ("makespan", "lower bound", "gap", "schedules", "seconds"):
        table.add_column(col, justify="right")
    gap = 100.0 * (summary["makespan"] - summary["lower_bound"]) / max(summary["lower_bound"], 1)
    table.add_row(
        str(summary["makespan"]), str(summary["lower_bound"]), f"{gap:.1f} %",
        str(summary["schedules"]), f"{summary['seconds']:.2f}",
    )
    _out.print(table)
    _out.print(f"critical: {', '.join(summary['critical'])}")
    _out.print(f"plans table: {summary['table']}\nGantt chart: {summary['gantt']}\nreport: {summary['markdown']}")


def register(root_app: typer.Typer) -> None:
    """Attach ``plan`` to the root app (a nameless sub-app: its command joins the root's)."""
    root_app.add_typer(app)
