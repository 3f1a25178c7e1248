"""contract-pipeline evaluates every shipped preference dataset against its annotators."""

from __future__ import annotations

import pytest

from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
from ops.config import PipelineConfig
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from tests.conftest import REPO_ROOT

CONTRACTS = REPO_ROOT / "configs" / "contracts"
DATASETS = [  # (file, adapter, contract, criteria)
    ("helpsteer_train500.jsonl", "helpsteer", "helpsteer.yaml", ("better",)),
    ("pku_saferlhf_train500.jsonl", "pku_saferlhf", "pku_saferlhf.yaml", ("better", "safer")),
    ("ultrafeedback_binarized_train1000.jsonl", "ultrafeedback", "ultrafeedback.yaml", ("better",)),
    ("hh_helpful_train500.jsonl", "hh_rlhf", "hh_rlhf.yaml", ("better",)),
    ("hh_harmless_train500.jsonl", "hh_rlhf", "hh_rlhf.yaml", ("better",)),
]


@pytest.mark.integration
@pytest.mark.parametrize(("source", "adapter", "contract", "criteria"), DATASETS,
                         ids=[d[0].split("_train")[0] for d in DATASETS])
def test_pipeline_writes_agreement_and_disagreements(prefect_harness, shared_data, tmp_path,
                                                     source, adapter, contract, criteria) -> None:
    params = ContractPipelineParams(
        contract=str(CONTRACTS / contract), data=str(shared_data / "preferences" / source),
        adapter=adapter, run_id="agree-1", lake_root=str(tmp_path / "lake"), optimize=False,
        evaluation_resamples=200, config=PipelineConfig.model_validate({"dask": {"n_workers": 1}}),
    )
    result = contract_pipeline(params)
    lake = Lake(tmp_path / "lake")
    agreement = lake.read_run(Table.AGREEMENT, "agree-1").to_pylist()
    assert {r["criterion"] for r in agreement} == set(criteria)
    for criterion in criteria:
        reward = [r for r in agreement if r["criterion"] == criterion and r["name"] == "reward"
                  and r["section"] == "signal"][0]
        assert reward["n_pairs"] > 100 and reward["ci_low"] <= reward["accuracy"] <= reward["ci_high"]
        calibration = result["agreement"]["calibration"][criterion]
        assert "weights" in calibration, calibration
    assert lake.part_paths(Table.DISAGREEMENTS, "agree-1")
    assert result["agreement"]["pairs"] == result["ingest"]["preferences"]
