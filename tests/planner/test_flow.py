"""The ``plan-campaign`` flow on a real local Dask cluster finds the same plan as the core."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlhf_core.io.lake import Lake
from rlhf_core.planner import SearchConfig, load_campaign, plan_project
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "configs" / "campaigns" / "rlhf_campaign.yaml"


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        try:
            yield
        finally:
            os.environ.pop("PREFECT_API_URL", None)


@pytest.mark.integration
def test_plan_campaign_flow_on_dask(prefect_api: None, tmp_path: Path) -> None:
    from flows.plan_campaign import PlanCampaignParams, plan_campaign_with
    from flows.runtime import DaskConfig
    from tasks.planning import PLANS, PlanSource

    config = SearchConfig(budget=288, islands=2, pop_size=8, migration_interval=3, seed=2)
    params = PlanCampaignParams(
        source=PlanSource(path=str(EXAMPLE)), search=config, run_id="flow-1", lake_root=str(tmp_path)
    )
    summary = plan_campaign_with(params, DaskConfig(n_workers=2))
    local = plan_project(load_campaign(EXAMPLE), config)
    assert summary["makespan"] == local.makespan and summary["schedules"] == local.schedules == 288
    rows = Lake(str(tmp_path)).read_table(PLANS, run_id="flow-1").to_pydict()
    by_name = dict(zip(rows["activity"], rows["start"], strict=True))
    assert [by_name[a.name] for a in local.project.activities] == local.starts.tolist()
    assert Path(summary["gantt"]).is_file()
    assert not (tmp_path / "work" / "plans" / "flow-1").exists()
