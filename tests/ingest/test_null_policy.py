"""Nulls in a contract input never crash a run: quarantined (``missing_contract_input``) or
filled with the contract's declared default, rows conserved."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from rlhf_core.contract import load_contract
from rlhf_core.contract.spec import InputSpec
from rlhf_core.ingest.nulls import RULE, NullInput, apply_null_policy
from rlhf_core.lake.store import Lake
from tests.conftest import REPO_ROOT

HELPSTEER = REPO_ROOT / "configs" / "contracts" / "helpsteer.yaml"
ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


@pytest.mark.parametrize(("fields", "message"), [
    ({"dtype": "float", "on_null": "default"}, "needs 'default"),
    ({"dtype": "float", "default": 1.0}, "applies only with on_null: default"),
    ({"dtype": "float", "range": [0, 4], "on_null": "default", "default": 5}, "outside the input's range"),
    ({"dtype": "int", "on_null": "default", "default": 1.5}, "whole number"),
    ({"dtype": "bool", "on_null": "default", "default": 1}, "true or false"),
    ({"dtype": "float", "on_null": "default", "default": "x"}, "must be a number"),
    ({"dtype": "float", "on_null": "drop"}, "on_null"),
])
def test_input_null_policies_are_checked(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InputSpec.model_validate(fields)


def test_the_hash_changes_only_when_a_policy_is_declared(tmp_path: Path) -> None:
    text = HELPSTEER.read_text()
    plain = tmp_path / "plain.yaml"
    plain.write_text(text.replace("helpfulness: {dtype: float, range: [0, 4]}",
                                  "helpfulness: {dtype: float, range: [0, 4], on_null: quarantine}"))
    declared = tmp_path / "declared.yaml"
    declared.write_text(text.replace(
        "helpfulness: {dtype: float, range: [0, 4]}",
        "helpfulness: {dtype: float, range: [0, 4], on_null: default, default: 0}"))
    original = load_contract(HELPSTEER)
    assert load_contract(plain).hash == original.hash  # the default policy, spelled out
    assert load_contract(declared).hash != original.hash


def test_nulls_are_quarantined_or_filled_and_rows_conserved() -> None:
    table = pa.table({"response_id": ["r0", "r1", "r2", "r3"], "source": ["s"] * 4,
                      "source_line": [1, 2, 3, 4],
                      "quality": pa.array([1.0, None, 3.0, None], pa.float32()),
                      "safe": pa.array([True, True, None, None]),
                      "extra": pa.array([None, None, None, None], pa.float32())})
    out = apply_null_policy(table, [NullInput("quality"), NullInput("safe", "default", False),
                                    NullInput("absent")], "run-1")
    assert out.accepted.num_rows + out.quarantined.num_rows == 4
    assert out.accepted.column("response_id").to_pylist() == ["r0", "r2"]
    assert out.accepted.column("safe").to_pylist() == [True, False]  # filled, not quarantined
    assert out.filled == {"safe": 2}
    assert out.quarantined.column("rule").to_pylist() == [RULE, RULE]
    assert out.quarantined.column("source_line").to_pylist() == [2, 4]
    assert all("'quality' is null" in r for r in out.quarantined.column("reason").to_pylist())
    assert json.loads(out.quarantined.column("record")[0].as_py())["response_id"] == "r1"


@pytest.mark.integration
def test_a_dataset_with_null_inputs_completes_the_pipeline(prefect_harness, shared_data: Path,
                                                           tmp_path: Path) -> None:
    """The reported failure: an attribute mapped with ``required: false`` let nulls through and the
    scoring stage failed the run with 'input column ... is null at row ...'."""
    from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
    from ops.config import PipelineConfig

    rows = [json.loads(line) for line in
            (shared_data / "preferences" / "helpsteer_train500.jsonl").open()][:200]
    for i in range(0, 200, 10):  # every tenth row lacks a rating the contract reads
        rows[i]["correctness" if i % 20 else "coherence"] = None
    data = tmp_path / "helpsteer_nulls.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("source: helpsteer\nformat: jsonl\nprompt: prompt\nresponse: response\n"
                       "attributes:\n" + "".join(
                           f"  {a}: {{column: {a}, dtype: float32, required: false}}\n"
                           for a in ATTRIBUTES))
    lake = tmp_path / "lake"
    result = contract_pipeline(ContractPipelineParams(
        contract=str(HELPSTEER), data=str(data), mapping=str(mapping), run_id="nulls-1",
        lake_root=str(lake), config=PipelineConfig.model_validate({"quality": {"max_failure_rate": 0.2}}),
        evaluation_resamples=50))
    ingest = result["ingest"]
    assert ingest["rows_in"] == 200 == ingest["accepted"] + ingest["quarantined"]
    assert ingest["quarantine_reasons"][RULE] == 20
    quarantine = Lake(lake).read_table("quarantine", run_id="nulls-1")
    missing = quarantine.filter(pa.compute.equal(quarantine.column("rule"), RULE))
    assert missing.num_rows == 20
    assert sorted(missing.column("source_line").to_pylist()) == list(range(1, 201, 10))
    assert result["scores"]["rows"] == ingest["accepted"] == 180
    assert result["differential"]["ok"]
