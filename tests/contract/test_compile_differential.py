"""Differential tests: the compiled JAX program and the contract's DuckDB SQL agree row by row.

Random well-typed programs (every aggregation rule; REQUIRES, INVARIANT, ENSURES, FORALL and
EXISTS clauses with nested expressions) on random dyadic data with unsorted prompt ids.
Masks must be identical; rewards, utilities and penalties agree within 1e-4 relative (absolute
below 1), with NaN / ±inf matching exactly.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.scoring import score_sql, score_table
from tests.contract.compile_strategies import dyadic_columns, programs

RULES = ("weighted_sum", "utilitarian", "nash_bargaining", "max_min", "lexicographic")
ROWS = 48


def assert_close(name: str, got: np.ndarray, want: np.ndarray) -> None:
    """Float columns: same NaN / inf pattern, finite values within 1e-4 relative."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), name
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)]), name
    tol = 1e-4 * np.maximum(1.0, np.abs(want[finite]))
    bad = np.abs(got[finite] - want[finite]) > tol
    assert not bad.any(), f"{name}: {got[finite][bad][:3]} vs {want[finite][bad][:3]}"


def assert_tables_agree(jax_out: pa.Table, sql_out: pa.Table) -> None:
    """Every output column agrees (masks exactly, floats within tolerance)."""
    assert jax_out.column_names == sql_out.column_names
    for name in jax_out.column_names:
        got = jax_out.column(name).to_numpy(zero_copy_only=False)
        want = sql_out.column(name).to_numpy(zero_copy_only=False)
        if got.dtype == object or want.dtype == object:
            assert got.tolist() == want.tolist(), name
        elif got.dtype == bool or want.dtype == bool:
            mismatch = np.flatnonzero(got != want)
            assert mismatch.size == 0, f"{name} differs at rows {mismatch[:5]}"
        else:
            assert_close(name, got, want)


@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_jax_and_duckdb_agree_on_random_programs(rule: str, data: st.DataObject) -> None:
    program = data.draw(programs(rule))
    seed = data.draw(st.integers(0, 2**31 - 1))
    table = pa.table(dyadic_columns(seed, ROWS))
    jax_out = score_table(program, table, id_columns=["row_id"])
    con = duckdb.connect()
    con.register("batch", table)
    sql_out = score_sql(program, con, "batch", id_columns=["row_id"], order_by=["row_id"])
    assert_tables_agree(jax_out, sql_out)
