"""Check tasks: Great Expectations on the scores, and the JAX-vs-SQL differential check."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.dataset as ds
from prefect import task

from rlhf_core.contract import load_contract
from rlhf_core.errors import DataError
from rlhf_core.lake.fs import resolve_paths
from rlhf_core.lake.store import Lake
from rlhf_core.quality.gx import check_table
from rlhf_core.scoring.verify import compare_scores_with_sql
from tasks.policies import IO_RETRY_OPTIONS


@task(name="check-scores-quality", **IO_RETRY_OPTIONS)
def check_scores_quality(score_paths: list[str], run_id: str, lake_root: str) -> dict[str, Any]:
    """Run the ``scores`` suite; scores are derived data, so any failing row fails the run."""
    filesystem, paths = resolve_paths(score_paths)  # local paths, or URIs of a remote lake
    table = ds.dataset(paths, format="parquet", filesystem=filesystem).to_table()
    result = check_table("scores", table, run_id=run_id, max_failure_rate=0.0)
    Lake(lake_root).write_file_atomic(f"artifacts/{run_id}/quality-scores.json",
                                      json.dumps(result.suite_result, default=str, indent=2).encode())
    return {"rows": table.num_rows, "failure_rate": result.failure_rate, "suite": result.suite_result}


@task(name="verify-scores-with-sql", **IO_RETRY_OPTIONS)
def verify_scores_with_sql(contract_path: str, response_paths: list[str], score_paths: list[str],
                           lake_root: str | None = None) -> dict[str, Any]:
    """Re-score the run with the contract's SQL in DuckDB; every row must agree with the lake.

    ``lake_root`` lets a contract that reads text (``len(response)``) decrypt an encrypted lake's.

    Raises:
        DataError: A row is missing or an output column disagrees (names column and row).
    """
    report = compare_scores_with_sql(load_contract(contract_path).program, response_paths, score_paths,
                                     lake=Lake(lake_root) if lake_root is not None else None)
    if not report["ok"]:
        raise DataError(
            f"JAX and SQL scores disagree: {report['mismatches']} mismatching rows by column, "
            f"{report['missing']} missing, e.g. {report['examples'][:1]}; this is a compiler bug, "
            "please report it with the contract"
        )
    return report
