"""Scoring tasks: plan shards, score one shard on a Dask worker, publish the partition.

Arrays never travel through Prefect or Dask: a shard task reads its row groups from Parquet,
scores them with the compiled contract and writes its own part file to the lake, returning only
the row count and the path.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy

from rlhf_core.contract import load_contract
from rlhf_core.errors import ContractError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from rlhf_core.scoring import score_table
from rlhf_core.scoring.schema import score_input_columns, scores_schema
from rlhf_core.scoring.shards import Shard, list_pieces, plan_shards, read_shard
from tasks.policies import IO_RETRY_OPTIONS

SCORES = Table.SCORES


@task(name="plan-shards", **IO_RETRY_OPTIONS)
def plan_score_shards(paths: list[str], group_column: str, shard_rows: int, keep_groups: bool) -> list[Shard]:
    """Split the input files into shards (prompts kept whole when the contract quantifies)."""
    return plan_shards(list_pieces(paths, group_column), shard_rows, keep_groups)


def _staged_part_exists(context: Any, parameters: dict[str, Any]) -> str:
    """Cache-key part: a cached shard counts only while its staged output file still exists."""
    lake = Lake(parameters["lake_root"])
    shard: Shard = parameters["shard"]
    path = f"{lake.staging_path(SCORES, parameters['run_id'])}/part-{shard.index:05d}.parquet"
    return "staged" if lake.fs.get_file_info(path).type.name == "File" else "missing"


SHARD_CACHE = INPUTS + TASK_SOURCE + CachePolicy.from_cache_key_fn(_staged_part_exists)


@task(name="score-shard", cache_policy=SHARD_CACHE, **IO_RETRY_OPTIONS)
def score_shard(contract_path: str, contract_hash: str, shard: Shard, run_id: str, lake_root: str) -> dict[str, Any]:
    """Score one shard under the contract and stage its part of the ``scores`` partition."""
    started = time.time()
    contract = load_contract(contract_path)
    if contract.hash != contract_hash:
        raise ContractError(f"{contract_path} changed during run {run_id} (hash {contract.hash}, "
                            f"run started with {contract_hash}); start a new run")
    program = contract.program
    table = read_shard(shard, score_input_columns(program))
    scores = score_table(program, table, id_columns=["prompt_id", "response_id"])
    path = Lake(lake_root).write_part(
        SCORES, run_id, scores, scores_schema(program), part=shard.index, staged=True,
        metadata={"rlhf_wizard.contract_hash": contract_hash}, dictionary_columns=["prompt_id"],
    )
    return {"shard": shard.index, "rows": scores.num_rows, "path": path, "started": started,
            "ended": time.time()}


@task(name="publish-scores", **IO_RETRY_OPTIONS)
def publish_scores(run_id: str, shards: int, lake_root: str) -> list[str]:
    """Make the run's ``scores`` partition visible, all parts at once."""
    return Lake(lake_root).commit_partition(SCORES, run_id, expected_parts=shards)
