"""CLI commands: ``rlhf-wizard plan CAMPAIGN.yaml`` / ``rlhf-wizard plan --psplib FILE``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rlhf_core.errors import PlannerError

_out = Console(highlight=False, soft_wrap=True)


def _run_id() -> str:
    return f"plan-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def plan_command(
    campaign: Annotated[Path | None, typer.Argument(help="Campaign YAML (configs/campaigns/*.yaml).")] = None,
    psplib: Annotated[Path | None, typer.Option("--psplib", help="Plan a PSPLIB .sm instance instead.")] = None,
    algorithm: Annotated[str, typer.Option(help="qiea (quantum-inspired, islands), bpga (bi-population GA, peak crossover) or ga (baseline).")] = "qiea",
    budget: Annotated[int, typer.Option(help="Schedules to generate (each SGS pass counts).")] = 5000,
    islands: Annotated[int, typer.Option(help="QIEA islands.")] = 4,
    pop_size: Annotated[int, typer.Option(help="Individuals per island.")] = 4,
    window_moves: Annotated[int, typer.Option(help="QIEA children per island that re-solve one window of their attractor's order (fewer than --pop-size).")] = 2,
    population: Annotated[int, typer.Option(help="BPGA: schedules in each of its two populations.")] = 80,
    restart_after: Annotated[int, typer.Option(help="BPGA: generations without progress before its populations restart (0: never).")] = 15,
    parallel_share: Annotated[float, typer.Option(help="QIEA/BPGA: share of children decoded by the parallel SGS (0..1).")] = 0.25,
    sgs: Annotated[str, typer.Option(help="serial or parallel schedule generation.")] = "serial",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same plan).")] = 0,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: generated).")] = None,
    lake: Annotated[str | None, typer.Option(help="Lake root (default: $RLHF_WIZARD_HOME or ./.wizard).")] = None,
    flow: Annotated[bool, typer.Option("--flow/--local", help="Run the plan-campaign flow (islands on Dask) or in this process.")] = False,
    workers: Annotated[int, typer.Option(help="Dask workers for --flow.")] = 2,
) -> None:
    """Schedule a campaign (or PSPLIB instance) to minimise makespan; write plan, Gantt and report."""
    from rlhf_core.io.lake import Lake
    from rlhf_core.planner import SearchConfig
    from tasks.planning import PlanSource

    if (campaign is None) == (psplib is None):
        raise PlannerError("give exactly one of CAMPAIGN.yaml or --psplib FILE")
    if algorithm not in ("qiea", "bpga", "ga") or sgs not in ("serial", "parallel"):
        raise PlannerError(f"unknown --algorithm {algorithm!r} / --sgs {sgs!r}; use qiea|bpga|ga and serial|parallel")
    source = PlanSource(path=str(campaign or psplib), kind="campaign" if campaign else "psplib")
    config = SearchConfig(
        algorithm=algorithm, budget=budget, islands=islands, pop_size=pop_size, sgs=sgs, seed=seed,
        window_moves=window_moves, bpga_population=population, parallel_share=parallel_share,
        bpga_restart_after=restart_after,
    )
    rid = run_id or _run_id()
    root = Lake(lake).root
    project = source.load()
    if flow:
        from flows.plan_campaign import PlanCampaignParams, plan_campaign_with
        from flows.runtime import DaskConfig, prefect_api

        params = PlanCampaignParams(source=source, search=config, run_id=rid, lake_root=root)
        with prefect_api():
            summary = plan_campaign_with(params, DaskConfig(n_workers=workers))
    else:
        from rlhf_core.planner import plan_project
        from tasks.planning import publish_plan

        summary = publish_plan(plan_project(project, config), rid, root)
    table = Table(title=f"plan {project.name} (run {rid})")
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


def register(app: typer.Typer) -> None:
    """Attach ``plan`` to the root app."""
    app.command("plan")(plan_command)
