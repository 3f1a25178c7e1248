"""fit-reward-models and optimize-policy inside contract-pipeline, on real PKU-SafeRLHF data."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
from ops.config import PipelineConfig
from rlhf_core.lake.store import Lake
from rlhf_core.optimize.export import export_pairs
from rlhf_core.security.audit import AuditLog
from tests.flows.conftest import DEMO_CONTRACT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pku_run(prefect_harness, shared_data, tmp_path_factory):
    lake = tmp_path_factory.mktemp("pku-lake")
    params = ContractPipelineParams(
        contract=str(DEMO_CONTRACT.with_name("pku_saferlhf.yaml")),
        data=str(shared_data / "preferences" / "pku_saferlhf_train500.jsonl"), adapter="pku_saferlhf",
        run_id="pku-1", lake_root=str(lake), reward_model_criteria=["better", "safer"],
        config=PipelineConfig.model_validate({"dask": {"n_workers": 2}}),
    )
    return lake, contract_pipeline(params)


def test_reward_models_fitted_per_criterion_and_written_into_responses(pku_run) -> None:
    lake, _ = pku_run
    models = Lake(lake).read_table("reward_models", run_id="pku-1")
    assert sorted(models.column("criterion").to_pylist()) == ["better", "safer"]
    responses = Lake(lake).read_table("responses", run_id="pku-1")
    for column in ("rm_better", "rm_safer"):
        assert responses.column(column).null_count == 0
    metrics = Lake(lake).read_table("reward_model_metrics", run_id="pku-1")
    held_out = metrics.filter(pc.and_(pc.equal(metrics["split"], "val"), pc.equal(metrics["criterion"], "better")))
    assert held_out.num_rows >= 5 and pc.mean(held_out["accuracy"]).as_py() > 0.5
    # the candidate grid (criteria x seeds x L2) was fitted: one candidate row per setting
    assert Lake(lake).read_table("reward_model_candidates", run_id="pku-1").num_rows == 4


def test_optimization_outputs_pareto_policy_and_trl_pairs(pku_run, tmp_path: Path) -> None:
    lake, result = pku_run
    opt = result["optimization"]
    assert opt["pareto"]["n_front"] >= 1 and "regret" in opt["pareto"]
    assert opt["policy"]["kl"] >= 0 and opt["policy"]["expected_cost"] <= opt["policy"]["budget"] + 1e-5
    pairs = Lake(lake).read_table("pairs", run_id="pku-1")
    assert pairs.num_rows == opt["pairs"]["pairs"] > 0
    for column in ("prompt", "chosen", "rejected"):
        assert pairs.schema.field(column).type == pa.string() and pairs.column(column).null_count == 0
    assert not pc.any(pc.equal(pairs["chosen"], pairs["rejected"])).as_py()
    scores = Lake(lake).read_table("scores", run_id="pku-1")
    vetoed = set(pc.filter(scores["response_id"], scores["veto"]).to_pylist())
    assert vetoed and vetoed.isdisjoint(pairs.column("chosen_id").to_pylist())
    assert opt["pairs"]["excluded_clause"] > 0  # prompts failing the EXISTS clause are counted
    assert Lake(lake).read_metadata("pairs", "pku-1")["rlhf_wizard.contract_hash"] == result["contract"]["hash"]
    selections = Lake(lake).read_table("selections", run_id="pku-1")
    assert selections.num_rows == scores.num_rows
    assert "## DPO pairs" in result["summary"] and "λ" in result["summary"]

    out = export_pairs("pku-1", tmp_path / "pairs.jsonl", Lake(lake))
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert len(rows) == out["rows"] == pairs.num_rows
    assert all(r["contract_hash"] == result["contract"]["hash"] and r["run_id"] == "pku-1" for r in rows)
    export_pairs("pku-1", tmp_path / "pairs.parquet", Lake(lake))
    meta = pq.read_schema(tmp_path / "pairs.parquet").metadata
    assert meta[b"rlhf_wizard.contract_hash"].decode() == result["contract"]["hash"]
    assert AuditLog(Lake(lake)).entries()[-1].kind == "export_written"


def test_export_cli_writes_jsonl_and_refuses_an_unknown_run(pku_run, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rlhf_cli.main import app

    lake, _ = pku_run
    runner = CliRunner()
    env = {"RLHF_WIZARD_HOME": str(lake)}
    ok = runner.invoke(app, ["export", "pku-1", "--out", str(tmp_path / "p.jsonl")], env=env)
    assert ok.exit_code == 0, ok.output
    assert "pairs of run pku-1" in ok.output and (tmp_path / "p.jsonl").stat().st_size > 0
    bad = runner.invoke(app, ["export", "no-such-run", "--out", str(tmp_path / "q.jsonl")], env=env)
    assert bad.exit_code != 0 and "has no DPO pairs" in str(bad.exception)
    assert not (tmp_path / "q.jsonl").exists()
