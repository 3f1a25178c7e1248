"""score_table (chunked JAX) and score_sql (DuckDB) on generated and real data."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from rlhf_core.contract import load_contract
from rlhf_core.contract.legal_blocks import parse_clauses, parse_expr
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram
from rlhf_core.errors import DataError, SchemaMismatchError
from rlhf_core.scoring import output_names, score_sql, score_table
from tests.contract.test_compile_differential import assert_tables_agree

ATTRS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def helpsteer_program(rule: str = "weighted_sum") -> ContractProgram:
    return ContractProgram(
        name="helpsteer",
        inputs=tuple(InputDecl(a, "int", 0.0, 4.0) for a in ATTRS)
        + (InputDecl("response", "str", 0.0, None),),
        stakeholders=(
            StakeholderProgram("users", 0.5, parse_expr("(helpfulness + correctness) / 8")),
            StakeholderProgram("editors", 0.25, parse_expr("coherence / 4")),
            StakeholderProgram("operator", 0.25, parse_expr("1 - verbosity / 4")),
        ),
        rule=rule,
        clauses=parse_clauses(
            "coherent: REQUIRES coherence >= 2\n"
            "short: INVARIANT len(response) <= 2000 PENALTY 0.1\n"
            "has_good: EXISTS r IN prompt: r.helpfulness >= 3\n"
            "bounded: ENSURES -1 <= reward AND reward <= 1"
        ),
    )


def synthetic(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = {a: rng.integers(0, 5, n) for a in ATTRS}
    cols["response"] = ["x" * int(k) for k in rng.integers(0, 4000, n)]
    cols["prompt_id"] = [f"p{int(k)}" for k in rng.integers(0, n // 3 + 1, n)]
    cols["response_id"] = np.arange(n)
    return pa.table(cols)


@pytest.mark.parametrize("rule", ["weighted_sum", "max_min"])
def test_chunked_jax_matches_duckdb_with_prompts_split_across_chunks(rule: str) -> None:
    table = synthetic(500)
    program = helpsteer_program(rule)
    jax_out = score_table(program, table, chunk_rows=37)
    con = duckdb.connect()
    con.register("responses", table)
    sql_out = score_sql(program, con, "responses", order_by=["response_id"])
    assert jax_out.column_names == ["prompt_id", "response_id", *output_names(program)]
    assert jax_out.column("response_id").to_pylist() == list(range(500))
    assert_tables_agree(jax_out, sql_out)
    whole = score_table(program, table)
    assert whole.equals(jax_out)


def test_missing_null_and_mistyped_inputs_are_typed_errors() -> None:
    program = helpsteer_program()
    table = synthetic(20)
    with pytest.raises(SchemaMismatchError, match="'coherence' is missing"):
        score_table(program, table.drop_columns(["coherence"]))
    nulls = table.set_column(
        table.column_names.index("verbosity"), "verbosity", pa.array([1] * 19 + [None])
    )
    with pytest.raises(DataError, match="'verbosity' is null at row 19"):
        score_table(program, nulls)
    texty = table.set_column(0, "helpfulness", pa.array(["high"] * 20))
    with pytest.raises(SchemaMismatchError, match="cannot be read as int"):
        score_table(program, texty)
    with pytest.raises(SchemaMismatchError, match="group column 'prompt_id' is missing"):
        score_table(program, table.drop_columns(["prompt_id"]))
    no_prompt = table.set_column(
        table.column_names.index("prompt_id"), "prompt_id", pa.array(["p"] * 19 + [None])
    )
    with pytest.raises(DataError, match="'prompt_id' is null at row 19"):
        score_table(program, no_prompt)


def test_multi_chunk_arrow_input_gives_one_prompt_index() -> None:
    table = synthetic(60)
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=7))
    assert rechunked.column("prompt_id").num_chunks > 1
    assert score_table(helpsteer_program(), rechunked).equals(score_table(helpsteer_program(), table))


def test_empty_table_scores_to_empty_outputs() -> None:
    out = score_table(helpsteer_program(), synthetic(10).slice(0, 0))
    assert out.num_rows == 0 and "reward" in out.column_names


def test_real_helpsteer_rows_agree(shared_data: Path) -> None:
    path = shared_data / "preferences" / "helpsteer_train500.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    table = pa.table({
        **{a: [r[a] for r in rows] for a in ATTRS},
        "response": [r["response"] for r in rows],
        "prompt_id": [r["prompt"] for r in rows],
        "response_id": list(range(len(rows))),
    })
    program = helpsteer_program("nash_bargaining")
    jax_out = score_table(program, table)
    con = duckdb.connect()
    con.register("helpsteer", table)
    assert_tables_agree(jax_out, score_sql(program, con, "helpsteer", order_by=["response_id"]))
    vetoed = jax_out.column("veto").to_numpy(zero_copy_only=False)
    assert 0 < vetoed.sum() < len(rows)  # some prompts / incoherent rows are vetoed, not all


def _data_for(program: ContractProgram, n: int, seed: int = 0) -> pa.Table:
    """Rows on a 1/8 grid inside every declared range (strs of random length), 5 per prompt."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for d in program.inputs:
        lo = 0.0 if d.lo is None else d.lo
        hi = lo + 8.0 if d.hi is None else d.hi
        if d.dtype == "bool":
            cols[d.name] = rng.random(n) < 0.7
        elif d.dtype == "str":
            cols[d.name] = ["y" * int(k) for k in rng.integers(int(lo), int(hi) + 600, n)]
        elif d.dtype == "int":
            cols[d.name] = rng.integers(int(lo), int(hi) + 1, n)
        else:
            cols[d.name] = (lo + rng.integers(0, int((hi - lo) * 8) + 1, n) / 8).astype(np.float32)
    cols[program.group_column] = rng.integers(0, n // 5, n)
    cols["row_id"] = np.arange(n)
    return pa.table(cols)


@pytest.mark.parametrize(
    "name", ["demo", "helpsteer", "helpsteer_nemotron", "pku_saferlhf", "ultrafeedback"]
)
def test_example_contracts_score_identically_in_jax_and_duckdb(name: str) -> None:
    path = Path(__file__).resolve().parents[2] / "configs" / "contracts" / f"{name}.yaml"
    program = load_contract(path).program
    table = _data_for(program, 400)
    con = duckdb.connect()
    con.register("rows", table)
    sql_out = score_sql(program, con, "rows", id_columns=["row_id"], order_by=["row_id"])
    assert_tables_agree(score_table(program, table, id_columns=["row_id"]), sql_out)
