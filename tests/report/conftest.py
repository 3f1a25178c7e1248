"""Fixtures for report tests: one real ``contract-pipeline`` run with quarantined rows (without its
optimisation stage), and a copy of its lake to which the real ``optimize-policy`` flow adds a
Pareto front, λ and DPO pairs, and the planner a campaign plan with its Gantt chart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rlhf_core.ingest.generator import write_synthetic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONTRACT = REPO_ROOT / "configs" / "contracts" / "demo.yaml"
CAMPAIGN = REPO_ROOT / "configs" / "campaigns" / "rlhf_campaign.yaml"
RUN_ID = "report-run-1"
BAD_EMPTY, BAD_RANGE = 6, 6


def _write_source(out: Path) -> Path:
    """1,200 generated responses plus 12 bad rows: 6 empty responses, 6 helpfulness out of range."""
    paths = write_synthetic(out, 1_200, seed=11)
    bad = pq.read_table(paths[0]).slice(0, BAD_EMPTY + BAD_RANGE)
    n = bad.num_rows
    texts = pa.array([""] * BAD_EMPTY + ["a perfectly fine answer"] * BAD_RANGE)
    helpful = pc.if_else(pa.array([False] * BAD_EMPTY + [True] * BAD_RANGE),
                         pa.scalar(9.0, pa.float32()), bad.column("helpfulness"))
    bad = bad.set_column(bad.schema.get_field_index("response"), "response", texts)
    bad = bad.set_column(bad.schema.get_field_index("helpfulness"), "helpfulness", helpful)
    bad = bad.set_column(bad.schema.get_field_index("response_id"), "response_id",
                         pa.array([f"bad-{i}" for i in range(n)]))
    pq.write_table(bad, out / "part-00099.parquet")
    return out


@pytest.fixture(scope="session")
def pipeline_run(prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A real ``contract-pipeline`` run (local Dask, one worker) on data with bad rows; its
    optimisation stage is off, so the report must say those sections were not computed."""
    from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
    from ops.config import PipelineConfig

    data = _write_source(tmp_path_factory.mktemp("report-data"))
    lake = tmp_path_factory.mktemp("report-lake")
    config = PipelineConfig.model_validate({"dask": {"n_workers": 1}})
    result = contract_pipeline(ContractPipelineParams(contract=str(DEMO_CONTRACT), data=str(data),
                                                      run_id=RUN_ID, lake_root=str(lake), config=config,
                                                      optimize=False))
    return lake, result


@pytest.fixture(scope="session")
def enriched_lake(pipeline_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the run's lake plus what ``optimize-policy`` and the planner write for the run."""
    from flows.optimize_policy import OptimizePolicyParams, optimize_policy
    from rlhf_core.planner import GAParams, SearchConfig, load_campaign, plan_project
    from rlhf_core.planner.publish import publish_plan

    source, _ = pipeline_run
    root = tmp_path_factory.mktemp("enriched") / "lake"
    shutil.copytree(source, root)
    optimize_policy(OptimizePolicyParams(contract=str(DEMO_CONTRACT), run_id=RUN_ID, lake_root=str(root)))
    plan = plan_project(load_campaign(CAMPAIGN), SearchConfig(budget=100, params=GAParams(pop_size=8)))
    publish_plan(plan, RUN_ID, str(root))
    return root
