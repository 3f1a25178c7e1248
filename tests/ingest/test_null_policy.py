"""Nulls in a contract input never crash a run: quarantined (``missing_contract_input``),
filled with the contract's declared default, or kept and vetoed (``null_veto``, floor reward),
rows conserved."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pydantic import ValidationError

from rlhf_core.contract import load_contract
from rlhf_core.contract.spec import InputSpec
from rlhf_core.ingest.nulls import RULE, NullInput, apply_null_policy
from rlhf_core.lake.schemas import NULL_VETO_COLUMN
from rlhf_core.lake.store import Lake
from rlhf_core.scoring.score import score_sql, score_table
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
    ({"dtype": "float", "range": [0, 4], "on_null": "veto", "default": 9}, "outside the input's range"),
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


def test_vetoed_nulls_are_kept_flagged_and_filled_with_a_placeholder() -> None:
    spec = InputSpec.model_validate({"dtype": "float", "range": [1, 4], "on_null": "veto"})
    assert spec.on_null == "veto" and spec.default is None
    table = pa.table({"response_id": ["r0", "r1", "r2", "r3"], "source": ["s"] * 4,
                      "source_line": [1, 2, 3, 4],
                      "quality": pa.array([2.0, None, 3.0, None], pa.float32()),
                      "safe": pa.array([True, None, None, True]),
                      "rating": pa.array([1.0, 2.0, 3.0, None], pa.float32())})
    out = apply_null_policy(table, [NullInput("quality", "veto", 1.0), NullInput("safe", "veto", False),
                                    NullInput("rating")], "run-1")
    assert out.accepted.num_rows + out.quarantined.num_rows == 4
    assert out.accepted.column("response_id").to_pylist() == ["r0", "r1", "r2"]  # r3: rating
    assert out.accepted.column(NULL_VETO_COLUMN).to_pylist() == [False, True, True]
    assert out.accepted.column("quality").to_pylist() == [2.0, 1.0, 3.0]  # the placeholder
    assert out.accepted.column("safe").null_count == 0
    assert out.vetoed == {"quality": 2, "safe": 2} and out.vetoed_rows == 2
    assert out.quarantined.column("rule").to_pylist() == [RULE]


def test_the_scorer_ors_the_null_veto_flag_in_both_compilations() -> None:
    program = load_contract(HELPSTEER).program
    n = 6
    table = pa.table({"prompt_id": ["p0", "p0", "p1", "p1", "p2", "p2"],
                      "response_id": [f"r{i}" for i in range(n)],
                      **{a: pa.array([3.0] * n, pa.float32()) for a in ATTRIBUTES},
                      NULL_VETO_COLUMN: [False, True, False, False, True, False]})
    jax_scores = score_table(program, table)
    con = duckdb.connect()
    con.register("responses", table)
    sql_scores = score_sql(program, con, "responses", id_columns=["response_id"],
                           order_by=["response_id"])
    assert jax_scores.column("veto").to_pylist() == [False, True, False, False, True, False]
    assert sql_scores.column("veto").to_pylist() == jax_scores.column("veto").to_pylist()
    reward = jax_scores.column("reward").to_pylist()
    assert reward[1] == reward[4] == program.floor_reward < reward[0] == reward[2]
    assert sql_scores.column("reward").to_pylist() == pytest.approx(reward)


@pytest.mark.integration
def test_a_dataset_with_null_inputs_completes_the_pipeline(prefect_harness, shared_data: Path,
                                                           tmp_path: Path) -> None:
    """The reported failure: an attribute mapped with ``required: false`` let nulls through and the
    scoring stage failed the run with 'input column ... is null at row ...'. One run covers two
    policies: null ``coherence`` rows are quarantined, null ``correctness`` rows (declared
    ``on_null: veto``) are kept, counted and scored as vetoed, in JAX and in the SQL check."""
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
    contract = tmp_path / "helpsteer_veto.yaml"  # a changed contract: unsigned, so a dry run
    contract.write_text(HELPSTEER.read_text().replace(
        "correctness: {dtype: float, range: [0, 4]}",
        "correctness: {dtype: float, range: [0, 4], on_null: veto}"))
    lake = tmp_path / "lake"
    result = contract_pipeline(ContractPipelineParams(
        contract=str(contract), data=str(data), mapping=str(mapping), run_id="nulls-1",
        lake_root=str(lake), config=PipelineConfig.model_validate({"quality": {"max_failure_rate": 0.2}}),
        evaluation_resamples=50, dry_run=True))
    ingest = result["ingest"]
    assert ingest["rows_in"] == 200 == ingest["accepted"] + ingest["quarantined"]
    assert ingest["quarantine_reasons"][RULE] == 10 and ingest["null_vetoed"] == 10
    quarantine = Lake(lake).read_table("quarantine", run_id="nulls-1")
    missing = quarantine.filter(pa.compute.equal(quarantine.column("rule"), RULE))
    assert sorted(missing.column("source_line").to_pylist()) == list(range(1, 201, 20))
    assert result["scores"]["rows"] == ingest["accepted"] == 190
    responses = Lake(lake).read_run("responses", "nulls-1")
    scores = Lake(lake).read_run("scores", "nulls-1").join(
        responses.select(["response_id", "source_line", NULL_VETO_COLUMN]), "response_id")
    vetoed = scores.filter(scores.column(NULL_VETO_COLUMN))
    assert sorted(vetoed.column("source_line").to_pylist()) == list(range(11, 201, 20))
    assert all(vetoed.column("veto").to_pylist())
    assert set(vetoed.column("reward").to_pylist()) == {load_contract(contract).program.floor_reward}
    assert result["differential"]["ok"]  # the SQL check ORs the same flags
