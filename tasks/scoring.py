"""Scoring tasks: plan shards, compute run statistics, score one shard on a Dask worker, publish.

Arrays never travel through Prefect or Dask: a shard task reads its row groups from Parquet,
scores them with the compiled contract and writes its own part file to the lake, returning only
the row count and the path.

Run-wide normalisations (``zscore(x IN run)`` …) need statistics of the whole run. The
``compute-run-stats`` pre-pass reads only the columns their arguments use, from every shard,
computes the statistics once and writes them to the lake (``artifacts/<run>/run-stats-<digest>``);
every ``score-shard`` task reads that file, so the sharded scores equal those of the run scored
as one table. For a contract without run-wide normalisations the pre-pass reads nothing and
returns None. Flow wiring::

    shards = plan_score_shards(...)
    stats = compute_run_stats(contract, contract_hash, shards, run_id, lake_root)
    score_shard.submit(contract, contract_hash, shard, run_id, lake_root, run_stats=stats)
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy

from rlhf_core.contract import load_contract
from rlhf_core.contract.legal_blocks.compile_jax import run_input_columns
from rlhf_core.contract.legal_blocks.normalize import RunStats, needs_run_stats
from rlhf_core.errors import ContractError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.schemas import NULL_VETO_COLUMN
from rlhf_core.lake.store import Lake
from rlhf_core.scoring import score_table
from rlhf_core.scoring.schema import score_input_columns, scores_schema, text_input_columns
from rlhf_core.scoring.score import run_values
from rlhf_core.scoring.shards import Shard, list_pieces, plan_shards, read_shard
from tasks.policies import IO_RETRY_OPTIONS

SCORES = Table.SCORES


def _read_shard(program: Any, shard: Shard, columns: list[str], lake_root: str,
                optional: list[str] | None = None) -> Any:
    """A shard's columns; through the lake when the contract reads text (``len(response)``), which
    an encrypted lake keeps encrypted (numeric inputs read as they are, with no key)."""
    if not set(text_input_columns(program)) & set(columns):
        return read_shard(shard, columns, optional=optional or ())
    lake = Lake(lake_root)
    try:
        return read_shard(shard, columns, optional=optional or (), open_file=lake.open_parquet)
    except OSError as exc:
        explained = lake.encryption.explain(exc, f"scoring shard {shard.index}")
        if explained is None:
            raise
        raise explained from None


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


def _load(contract_path: str, contract_hash: str, run_id: str) -> Any:
    contract = load_contract(contract_path)
    if contract.hash != contract_hash:
        raise ContractError(f"{contract_path} changed during run {run_id} (hash {contract.hash}, "
                            f"run started with {contract_hash}); start a new run")
    return contract


@task(name="compute-run-stats", **IO_RETRY_OPTIONS)
def compute_run_stats(contract_path: str, contract_hash: str, shards: list[Shard], run_id: str,
                      lake_root: str) -> str | None:
    """Statistics of the whole run for the contract's ``... IN run`` normalisations.

    Reads only the input columns their arguments use, of every shard, and writes the
    statistics to the lake once. Returns their path (its name carries a digest of the content,
    so shard caches keyed on it follow the data), or None when the contract needs none.
    """
    program = _load(contract_path, contract_hash, run_id).program
    if not needs_run_stats(program):
        return None
    values: dict[str, list[Any]] = {}
    columns = list(run_input_columns(program))
    for shard in shards:
        for key, part in run_values(program, _read_shard(program, shard, columns, lake_root)).items():
            values.setdefault(key, []).append(part)
    data = RunStats.from_values(program, values).to_bytes(contract_hash)
    digest = hashlib.sha256(data).hexdigest()[:16]
    return Lake(lake_root).write_file_atomic(f"artifacts/{run_id}/run-stats-{digest}.npz", data)


def read_run_stats(lake_root: str, path: str, contract_hash: str) -> RunStats:
    """The run statistics ``compute_run_stats`` wrote at ``path``."""
    with Lake(lake_root).fs.open_input_stream(path) as stream:
        return RunStats.from_bytes(stream.read(), contract_hash)


@task(name="score-shard", cache_policy=SHARD_CACHE, **IO_RETRY_OPTIONS)
def score_shard(contract_path: str, contract_hash: str, shard: Shard, run_id: str, lake_root: str,
                run_stats: str | None = None) -> dict[str, Any]:
    """Score one shard under the contract and stage its part of the ``scores`` partition.

    ``run_stats`` is the path ``compute_run_stats`` returned; required when the contract has
    ``... IN run`` normalisations (a shard alone is not the run).
    """
    started = time.time()
    contract = _load(contract_path, contract_hash, run_id)
    program = contract.program
    stats = None
    if needs_run_stats(program):
        if run_stats is None:
            raise ContractError(
                f"{contract_path} normalises over the whole run ('... IN run'): score-shard needs "
                "the run statistics of compute-run-stats (run it after plan-shards and pass "
                "run_stats=...); scoring a shard on its own statistics would be wrong"
            )
        stats = read_run_stats(lake_root, run_stats, contract_hash)
    table = _read_shard(program, shard, score_input_columns(program), lake_root,
                        optional=[NULL_VETO_COLUMN])
    scores = score_table(program, table, id_columns=["prompt_id", "response_id"],
                         run_stats=stats)
    path = Lake(lake_root).write_part(
        SCORES, run_id, scores, scores_schema(program), part=shard.index, staged=True,
        metadata={"rlhf_wizard.contract_hash": contract_hash}, dictionary_columns=["prompt_id"],
    )
    return {"shard": shard.index, "rows": scores.num_rows, "path": path, "started": started,
            "ended": time.time()}


@task(name="publish-scores", **IO_RETRY_OPTIONS)
def publish_scores(run_id: str, shards: int, lake_root: str) -> list[str]:
    """Make the run's ``scores`` partition visible, all parts at once; returns their paths
    (URIs on object storage, which the check tasks open on any host)."""
    lake = Lake(lake_root)
    return [lake.uri(p) for p in lake.commit_partition(SCORES, run_id, expected_parts=shards)]
