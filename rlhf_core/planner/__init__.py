"""Campaign planner: RCPSP model, PSPLIB reader, JAX schedule generation, QIEA, BPGA and GA search.

Typical use::

    from rlhf_core.planner import SearchConfig, load_campaign, plan_project
    plan = plan_project(load_campaign("configs/campaigns/rlhf_campaign.yaml"), SearchConfig())
"""

from rlhf_core.planner.campaign import load_campaign
from rlhf_core.planner.cpm import critical_path, lower_bound, resource_bound
from rlhf_core.planner.feasibility import check_schedule, schedule_violations
from rlhf_core.planner.gantt import gantt_png, plan_markdown
from rlhf_core.planner.instance import Instance, padded_shape, stack, to_instance
from rlhf_core.planner.islands import (
    advance_island,
    best_of,
    migrate_islands,
    start_island,
    state_from_numpy,
    state_to_numpy,
)
from rlhf_core.planner.model import Activity, Project, ProjectArrays, Resource
from rlhf_core.planner.plan import PLANS_SCHEMA, Plan, plan_from_schedule, plan_project
from rlhf_core.planner.psplib import ReferenceValue, instance_key, read_sm, read_solutions
from rlhf_core.planner.search import SearchConfig, SearchResult, epoch_lengths, make_solver

__all__ = [
    "PLANS_SCHEMA", "Activity", "Instance", "Plan", "Project", "ProjectArrays", "ReferenceValue",
    "Resource", "SearchConfig", "SearchResult", "advance_island", "best_of", "check_schedule",
    "critical_path", "epoch_lengths", "gantt_png", "instance_key", "load_campaign", "lower_bound",
    "make_solver", "migrate_islands", "padded_shape", "plan_from_schedule", "plan_markdown",
    "plan_project", "read_sm", "read_solutions", "resource_bound", "schedule_violations", "stack",
    "start_island", "state_from_numpy", "state_to_numpy", "to_instance",
]
