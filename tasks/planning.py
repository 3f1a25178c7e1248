"""Planning tasks: thin Prefect wrappers over :mod:`rlhf_core.planner` for the ``plan-campaign`` flow.

Island states never travel through Prefect or Dask: each task reads its island from the lake
(:mod:`rlhf_core.planner.state_io`), advances it, writes it back atomically and returns only the
path. Publishing is :mod:`rlhf_core.planner.publish`; the tasks add retries and the Markdown
artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from rlhf_core.planner.config import SearchConfig
from rlhf_core.planner.publish import (
    plan_and_publish,
    publish_best_island,
    read_markdown,
)
from rlhf_core.planner.source import PlanSource
from rlhf_core.planner.state_io import (
    advance_stored_island,
    migrate_stored_islands,
    start_stored_island,
)
from tasks.policies import IO_RETRY_OPTIONS


def _artifact(summary: dict[str, Any], lake_root: str) -> None:
    create_markdown_artifact(
        markdown=read_markdown(summary, lake_root) + f"\nGantt chart: `{summary['gantt']}`\n",
        key="plan-campaign", description=f"plan of {summary['project']} (run {summary['run_id']})",
    )


@task(name="start-island", **IO_RETRY_OPTIONS)
def start_island_task(source: PlanSource, config: SearchConfig, island: int, run_id: str, lake_root: str) -> str:
    """Initialise one island (epoch 0) and store it; returns its path relative to the lake root."""
    return start_stored_island(source, config, island, run_id, lake_root)


@task(name="advance-island", **IO_RETRY_OPTIONS)
def advance_island_task(
    source: PlanSource, config: SearchConfig, island: int, epoch: int, state_path: str,
    run_id: str, lake_root: str,
) -> str:
    """Run one island through one epoch and store it."""
    return advance_stored_island(source, config, island, epoch, state_path, run_id, lake_root)


@task(name="migrate-islands", **IO_RETRY_OPTIONS)
def migrate_task(state_paths: list[str], epoch: int, run_id: str, lake_root: str) -> list[str]:
    """Ring-migrate the islands' best solutions; stores and returns the new states' paths."""
    return migrate_stored_islands(state_paths, epoch, run_id, lake_root)


@task(name="publish-plan", **IO_RETRY_OPTIONS)
def publish_islands_task(
    source: PlanSource, config: SearchConfig, state_paths: list[str], run_id: str, lake_root: str,
    started: float,
) -> dict[str, Any]:
    """Pick the best island, verify and publish the plan, and attach the Markdown artifact."""
    summary = publish_best_island(source, config, state_paths, run_id, lake_root, started)
    _artifact(summary, lake_root)
    return summary


@task(name="plan-single-population")
def plan_single_task(source: PlanSource, config: SearchConfig, run_id: str, lake_root: str) -> dict[str, Any]:
    """Search in one process (BPGA, GA, or a one-island QIEA) and publish the plan."""
    summary = plan_and_publish(source, config, run_id, lake_root)
    _artifact(summary, lake_root)
    return summary


__all__ = [
    "PlanSource", "advance_island_task", "migrate_task", "plan_single_task", "publish_islands_task",
    "start_island_task",
]
