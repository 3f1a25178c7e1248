"""Compiled evaluation of a reward contract over columnar batches.

Public API::

    score_table(program, table, id_columns=None, chunk_rows=1<<20, run_stats=None)
        -> pyarrow.Table                                                             # JAX
    score_sql(program, con, relation, id_columns=None, order_by=()) -> pyarrow.Table  # DuckDB
    output_names(program) -> list[str]
    run_values(program, table) -> {key: float32 array}   # '... IN run' arguments of one part
    table_run_stats(program, table) -> RunStats | None   # the table taken as the whole run
    RunStats.from_values(program, {key: [parts...]})     # statistics of a run in parts
    compile_jax(program) -> CompiledContract      # .fn(columns, segment_ids, num_segments)
    compile_sql(program) -> SqlProgram            # .select(relation, id_columns, order_by)
    evaluate_numpy(program, columns, segment_ids=None) -> ContractOutputs
    check_ensures(program) -> tuple[EnsuresResult, ...]
    reward_bounds(program) -> Interval; utility_bounds(program) -> tuple[Interval, ...]
"""

from rlhf_core.contract.bounds import reward_bounds, utility_bounds
from rlhf_core.contract.legal_blocks.compile_jax import (
    CompiledContract,
    compile_jax,
    evaluate_numpy,
)
from rlhf_core.contract.legal_blocks.compile_sql import SqlProgram, compile_sql
from rlhf_core.contract.legal_blocks.lower_array import ContractOutputs
from rlhf_core.contract.legal_blocks.normalize import RunStats
from rlhf_core.contract.static_check import EnsuresResult, check_ensures
from rlhf_core.scoring.score import (
    output_names,
    run_values,
    score_sql,
    score_table,
    table_run_stats,
)

__all__ = [
    "CompiledContract",
    "ContractOutputs",
    "EnsuresResult",
    "RunStats",
    "SqlProgram",
    "check_ensures",
    "compile_jax",
    "compile_sql",
    "evaluate_numpy",
    "output_names",
    "reward_bounds",
    "run_values",
    "score_sql",
    "score_table",
    "table_run_stats",
    "utility_bounds",
]
