"""Planning tasks: start / advance / migrate QIEA islands on workers, then publish the plan.

Island states never travel through Prefect or Dask: each task reads its island from an ``.npz``
file under the lake root (``work/plans/<run_id>/``), advances it and writes it back atomically,
returning only the path. :func:`publish_plan` is also called directly by the CLI's local mode.
"""

from __future__ import annotations

import io
import time
from typing import Any, Literal

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict

from rlhf_core.io.lake import Lake
from rlhf_core.planner import (
    Plan,
    Project,
    SearchConfig,
    advance_island,
    best_of,
    gantt_png,
    load_campaign,
    migrate_islands,
    plan_from_schedule,
    plan_markdown,
    plan_project,
    read_sm,
    start_island,
    state_from_numpy,
    state_to_numpy,
    to_instance,
)
from rlhf_core.planner.plan import PLANS_SCHEMA
from tasks.policies import IO_RETRY_OPTIONS

PLANS = "plans"


class PlanSource(BaseModel):
    """What to plan: a campaign YAML or a PSPLIB ``.sm`` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    kind: Literal["campaign", "psplib"] = "campaign"

    def load(self) -> Project:
        """Read and validate the project."""
        return load_campaign(self.path) if self.kind == "campaign" else read_sm(self.path)


def _island_relpath(run_id: str, island: int, epoch: int) -> str:
    return f"work/plans/{run_id}/island-{island:02d}-epoch-{epoch:04d}.npz"


def _save_island(lake: Lake, relpath: str, state: Any) -> str:
    buf = io.BytesIO()
    np.savez(buf, **state_to_numpy(state))
    lake.write_file_atomic(relpath, buf.getvalue())
    return relpath


def _load_island(lake: Lake, relpath: str) -> Any:
    with lake.fs.open_input_file(lake.path(relpath)) as fh:
        data = fh.read()
    with np.load(io.BytesIO(data)) as npz:
        return state_from_numpy({name: npz[name] for name in npz.files})


@task(name="start-island", **IO_RETRY_OPTIONS)
def start_island_task(source: PlanSource, config: SearchConfig, island: int, run_id: str, lake_root: str) -> str:
    """Initialise one island (epoch 0) and store it; returns its path relative to the lake root."""
    state = start_island(to_instance(source.load().arrays()), config, island)
    return _save_island(Lake(lake_root), _island_relpath(run_id, island, 0), state)


@task(name="advance-island", **IO_RETRY_OPTIONS)
def advance_island_task(
    source: PlanSource, config: SearchConfig, island: int, epoch: int, state_path: str,
    run_id: str, lake_root: str,
) -> str:
    """Run one island through one epoch and store it."""
    lake = Lake(lake_root)
    state = advance_island(to_instance(source.load().arrays()), config, _load_island(lake, state_path), island, epoch)
    return _save_island(lake, _island_relpath(run_id, island, epoch), state)


@task(name="migrate-islands", **IO_RETRY_OPTIONS)
def migrate_task(state_paths: list[str], epoch: int, run_id: str, lake_root: str) -> list[str]:
    """Ring-migrate the islands' best solutions; stores and returns the new states' paths."""
    lake = Lake(lake_root)
    moved = migrate_islands([_load_island(lake, p) for p in state_paths])
    return [
        _save_island(lake, _island_relpath(run_id, i, epoch).replace(".npz", "-migrated.npz"), s)
        for i, s in enumerate(moved)
    ]


def publish_plan(plan: Plan, run_id: str, lake_root: str) -> dict[str, Any]:
    """Write the plan to the lake: the ``plans`` partition, the Gantt PNG and the Markdown.

    Returns:
        A small summary: makespan, bounds, schedules and the written paths.
    """
    lake = Lake(lake_root)
    table_path = lake.write_partition(PLANS, run_id, plan.to_table(), PLANS_SCHEMA)
    png = lake.write_file_atomic(f"reports/{run_id}/plan-gantt.png", gantt_png(plan))
    markdown = plan_markdown(plan)
    md = lake.write_file_atomic(f"reports/{run_id}/plan.md", markdown.encode("utf-8"))
    return {
        "project": plan.project.name, "makespan": plan.makespan, "lower_bound": plan.lower_bound,
        "cp_bound": plan.cp_bound, "schedules": plan.schedules, "seconds": round(plan.seconds, 3),
        "critical": [a.name for a, c in zip(plan.project.activities, plan.critical, strict=True) if c],
        "table": table_path, "gantt": png, "markdown": md, "run_id": run_id,
    }


def _artifact(summary: dict[str, Any], lake_root: str) -> None:
    with Lake(lake_root).fs.open_input_file(summary["markdown"]) as fh:
        text = fh.read().decode("utf-8")
    create_markdown_artifact(
        markdown=text + f"\nGantt chart: `{summary['gantt']}`\n", key="plan-campaign",
        description=f"plan of {summary['project']} (run {summary['run_id']})",
    )


@task(name="publish-plan", **IO_RETRY_OPTIONS)
def publish_islands_task(
    source: PlanSource, config: SearchConfig, state_paths: list[str], run_id: str, lake_root: str,
    started: float,
) -> dict[str, Any]:
    """Pick the best island, verify and publish the plan, and attach the Markdown artifact."""
    lake = Lake(lake_root)
    best = best_of([_load_island(lake, p) for p in state_paths])
    plan = plan_from_schedule(
        source.load(), config, np.asarray(best.starts), int(best.schedules), time.time() - started
    )
    summary = publish_plan(plan, run_id, lake_root)
    _artifact(summary, lake_root)
    lake.fs.delete_dir(lake.path(f"work/plans/{run_id}"))  # island states are no longer needed
    return summary


@task(name="plan-single-population")
def plan_single_task(source: PlanSource, config: SearchConfig, run_id: str, lake_root: str) -> dict[str, Any]:
    """Search in one process (the GA baseline, or a one-island QIEA) and publish the plan."""
    summary = publish_plan(plan_project(source.load(), config), run_id, lake_root)
    _artifact(summary, lake_root)
    return summary
