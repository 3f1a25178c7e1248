"""DuckDB SQL compiler: exact literals, quoted identifiers, IEEE guards, size limit."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from rlhf_core.contract.legal_blocks import parse_expr
from rlhf_core.contract.legal_blocks.ast import Call, Compare, IfElse, Name, Num
from rlhf_core.contract.legal_blocks.compile_sql import compile_sql, quote_ident, sql_float
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram
from rlhf_core.errors import ContractError, SchemaMismatchError
from rlhf_core.scoring import score_sql, score_table
from tests.contract.test_compile_differential import assert_tables_agree


def test_literals_round_to_the_same_float32_as_numpy() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(0, 1e3, 200), rng.uniform(-1, 1, 200), [0.1, 1 / 3, 1e-40]])
    con = duckdb.connect()
    sql = "SELECT " + ", ".join(sql_float(v) for v in values)
    got = np.asarray(con.execute(sql).fetchone(), dtype=np.float32)
    np.testing.assert_array_equal(got, values.astype(np.float32))


def test_identifiers_are_quoted() -> None:
    assert quote_ident('a"b') == '"a""b"'
    program = _program("x / 3")
    con = duckdb.connect()
    con.register('we"ird', pa.table({"x": [3.0], "row_id": [0]}))
    out = score_sql(program, con, 'we"ird', id_columns=["row_id"])
    assert out.column("reward").to_pylist() == [1.0]
    with pytest.raises(SchemaMismatchError, match="collides with an output column"):
        compile_sql(program).select("t", ["reward"])
    with pytest.raises(SchemaMismatchError, match="not among id_columns"):
        compile_sql(program).select("t", ["row_id"], ["x"])


def _program(utility: str, lo: float = -2.0, hi: float = 2.0) -> ContractProgram:
    return ContractProgram(
        name="sql",
        inputs=(InputDecl("x", "float", lo, hi),),
        stakeholders=(StakeholderProgram("a", 1.0, parse_expr(utility)),),
        rule="utilitarian",
    )


@pytest.mark.parametrize(
    "utility",
    [
        "exp(100 * x)",  # overflows float32 -> inf, never a cast error
        "min(log(x), 1)",  # NaN for x < 0 must propagate through min
        "max(sqrt(x), -1)",
        "clip(log(x), -1, 1)",
        "IF log(x) < 0 THEN 1 ELSE 2",  # NaN compares false
        "IF log(x) != log(x) THEN 1 ELSE 2",  # NaN != NaN is true
        "x ^ 0.5 + (x / 0)",
        "-max(x / 0, 1)",
    ],
)
def test_ieee_edge_values_agree(utility: str) -> None:
    program = _program(utility)
    table = pa.table({"x": np.array([-2, -0.5, 0, 0.5, 1, 2], np.float32), "row_id": range(6)})
    con = duckdb.connect()
    con.register("t", table)
    want = score_sql(program, con, "t", id_columns=["row_id"], order_by=["row_id"])
    assert_tables_agree(score_table(program, table, id_columns=["row_id"]), want)


def test_runaway_nan_guards_hit_the_size_limit() -> None:
    # Each level's NaN guard repeats the operand: SQL text doubles per level, nodes grow by 4.
    expr = Call("log", (Name("x"),))
    for _ in range(40):
        expr = IfElse(Compare(("<",), (expr, Num(0.0))), Call("log", (Name("x"),)), Num(1.0))
    program = ContractProgram(
        name="deep", inputs=(InputDecl("x", "float", -1.0, 1.0),),
        stakeholders=(StakeholderProgram("a", 1.0, expr),), rule="utilitarian",
    )
    with pytest.raises(ContractError, match="too complex for SQL compilation"):
        compile_sql(program)
