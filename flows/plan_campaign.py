"""Flow ``plan-campaign``: QIEA islands on Dask workers, migration between epochs, one plan.

BPGA, GA and one-island QIEA configurations search as one population in a single task.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from pydantic import BaseModel, ConfigDict

from ops.runtime import DaskConfig, make_task_runner
from rlhf_core.planner.config import SearchConfig
from rlhf_core.planner.islands import epoch_lengths, island_count
from rlhf_core.planner.source import PlanSource
from tasks.planning import (
    advance_island_task,
    migrate_task,
    plan_single_task,
    publish_islands_task,
    start_island_task,
)


class PlanCampaignParams(BaseModel):
    """Parameters of ``plan-campaign``.

    Attributes:
        source: The campaign YAML or PSPLIB file.
        search: Schedule budget, seed, and the algorithm with its parameters.
        run_id: Run id; the ``plans`` partition of this id is (re)written.
        lake_root: Lake root (``RLHF_WIZARD_HOME``).
    """

    model_config = ConfigDict(extra="forbid")

    source: PlanSource
    search: SearchConfig = SearchConfig()
    run_id: str
    lake_root: str


@flow(name="plan-campaign", task_runner=make_task_runner(DaskConfig()), log_prints=True)
def plan_campaign(params: PlanCampaignParams) -> dict[str, Any]:
    """Start islands -> (advance every island -> migrate) per epoch -> publish the best plan."""
    started = time.time()
    src, cfg, run_id, root = params.source, params.search, params.run_id, params.lake_root
    islands = island_count(cfg)
    if islands == 1:
        return plan_single_task(src, cfg, run_id, root)
    futures = [start_island_task.submit(src, cfg, i, run_id, root) for i in range(islands)]
    paths = [f.result() for f in futures]
    for epoch in range(1, len(epoch_lengths(cfg)) + 1):
        futures = [
            advance_island_task.submit(src, cfg, i, epoch, path, run_id, root)
            for i, path in enumerate(paths)
        ]
        paths = migrate_task([f.result() for f in futures], epoch, run_id, root)
    return publish_islands_task(src, cfg, paths, run_id, root, started)


def plan_campaign_with(params: PlanCampaignParams, dask: DaskConfig) -> dict[str, Any]:
    """Run ``plan-campaign`` on the Dask cluster described by ``dask``."""
    return plan_campaign.with_options(task_runner=make_task_runner(dask))(params)
