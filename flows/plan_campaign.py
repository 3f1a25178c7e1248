"""Flow ``plan-campaign``: QIEA islands on Dask workers, migration between epochs, one plan.

BPGA, GA and one-island QIEA configurations search as one population in a single task.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from pydantic import BaseModel, ConfigDict, SecretStr

from ops.access import guard
from ops.confinement import confine_run
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
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    source: PlanSource
    search: SearchConfig = SearchConfig()
    run_id: str
    lake_root: str
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="plan-campaign", task_runner=make_task_runner(DaskConfig()), log_prints=True)
def plan_campaign(params: PlanCampaignParams) -> dict[str, Any]:
    """Start islands -> (advance every island -> migrate) per epoch -> publish the best plan."""
    guard(params, "plan")
    started = time.time()
    checked = confine_run("plan-campaign", data={"source.path": params.source.path},
                          lake_root=params.lake_root, details={"run_id": params.run_id})
    params = params.model_copy(update={
        "source": params.source.model_copy(update={"path": checked["source.path"]}),
        "lake_root": checked["lake_root"]})
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
