"""Publish a plan to the lake: the ``plans`` table partition, the Gantt PNG and the Markdown.

Used by the CLI's local mode and by the ``plan-campaign`` flow's tasks alike; nothing here needs
an orchestrator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlhf_core.lake.catalog import Table, spec
from rlhf_core.lake.store import Lake
from rlhf_core.planner.config import SearchConfig
from rlhf_core.planner.gantt import gantt_png, plan_markdown
from rlhf_core.planner.islands import best_of
from rlhf_core.planner.plan import Plan, plan_from_schedule, plan_project
from rlhf_core.planner.source import PlanSource
from rlhf_core.planner.state_io import discard_states, load_island


def publish_plan(plan: Plan, run_id: str, lake_root: str) -> dict[str, Any]:
    """Write the plan to the lake: the ``plans`` partition, the Gantt PNG and the Markdown.

    Returns:
        A small summary: makespan, bounds, schedules, critical activities and the written paths.
    """
    lake = Lake(lake_root)
    table_path = lake.write_partition(Table.PLANS, run_id, plan.to_table(), spec(Table.PLANS).schema)
    png = lake.write_file_atomic(f"reports/{run_id}/plan-gantt.png", gantt_png(plan))
    md = lake.write_file_atomic(f"reports/{run_id}/plan.md", plan_markdown(plan).encode("utf-8"))
    return {
        "project": plan.project.name, "makespan": plan.makespan, "lower_bound": plan.lower_bound,
        "cp_bound": plan.cp_bound, "schedules": plan.schedules, "seconds": round(plan.seconds, 3),
        "critical": [a.name for a, c in zip(plan.project.activities, plan.critical, strict=True) if c],
        "table": table_path, "gantt": png, "markdown": md, "run_id": run_id,
    }


def plan_and_publish(source: PlanSource, config: SearchConfig, run_id: str, lake_root: str) -> dict[str, Any]:
    """Search in this process, verify and publish; returns :func:`publish_plan`'s summary."""
    return publish_plan(plan_project(source.load(), config), run_id, lake_root)


def publish_best_island(source: PlanSource, config: SearchConfig, state_paths: Sequence[str],
                        run_id: str, lake_root: str, started: float) -> dict[str, Any]:
    """Verify and publish the best of the stored islands, then discard the stored states.

    Args:
        started: ``time.time()`` when the run began (the plan's wall time counts from it).
    """
    lake = Lake(lake_root)
    best = best_of([load_island(lake, p) for p in state_paths])
    plan = plan_from_schedule(source.load(), config, np.asarray(best.starts), int(best.schedules),
                              time.time() - started)
    summary = publish_plan(plan, run_id, lake_root)
    discard_states(lake_root, run_id)
    return summary


def read_markdown(summary: dict[str, Any], lake_root: str) -> str:
    """The Markdown report a :func:`publish_plan` summary points to."""
    with Lake(lake_root).fs.open_input_file(summary["markdown"]) as fh:
        return fh.read().decode("utf-8")
