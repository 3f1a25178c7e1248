"""The ``plan-campaign`` flow on a real local Dask cluster finds the same plan as the core."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from rlhf_core.planner import QIEAParams, SearchConfig, load_campaign, plan_project
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "configs" / "campaigns" / "rlhf_campaign.yaml"


@pytest.mark.integration
def test_plan_campaign_flow_on_dask(prefect_harness: str, tmp_path: Path) -> None:
    from flows.plan_campaign import PlanCampaignParams, plan_campaign_with
    from ops.runtime import DaskConfig
    from rlhf_core.planner.source import PlanSource

    config = SearchConfig(budget=288, seed=2, params=QIEAParams(islands=2, pop_size=8, migration_interval=3))
    params = PlanCampaignParams(
        source=PlanSource(path=str(EXAMPLE)), search=config, run_id="flow-1", lake_root=str(tmp_path)
    )
    summary = plan_campaign_with(params, DaskConfig(n_workers=2))
    local = plan_project(load_campaign(EXAMPLE), config)
    assert summary["makespan"] == local.makespan and summary["schedules"] == local.schedules == 288
    rows = Lake(str(tmp_path)).read_table(Table.PLANS, run_id="flow-1").to_pydict()
    by_name = dict(zip(rows["activity"], rows["start"], strict=True))
    assert [by_name[a.name] for a in local.project.activities] == local.starts.tolist()
    assert Path(summary["gantt"]).is_file()
    assert not (tmp_path / "work" / "plans" / "flow-1").exists()
