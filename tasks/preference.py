"""Reward-model tasks: fit one (criterion, seed, L2) candidate per Dask task, then select and apply.

Each candidate task reads the run's ``responses`` / ``preferences`` from the lake itself, runs
prompt-grouped k-fold cross-validation for its one setting and stages its model row and metric rows;
the selection task keeps, per criterion, the candidate with the lowest mean validation log-loss,
publishes ``reward_models`` + ``reward_model_metrics``, and writes the models' ``rm_<criterion>``
scores into the run's ``responses`` (same part numbers) so contracts can use them as inputs.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from rlhf_core.lake.catalog import METRICS_SCHEMA, MODEL_SCHEMA, Table, spec
from rlhf_core.lake.store import Lake
from rlhf_core.preference import (
    FitConfig,
    RewardModelConfig,
    fit_reward_models,
    score_responses,
)
from tasks.policies import IO_RETRY_OPTIONS

CANDIDATES, METRICS, MODELS = (Table.REWARD_MODEL_CANDIDATES, Table.REWARD_MODEL_METRICS,
                               Table.REWARD_MODELS)


@task(name="fit-reward-model-candidate", **IO_RETRY_OPTIONS)
def fit_candidate(run_id: str, lake_root: str, index: int, criterion: str, seed: int, l2: float,
                  k_folds: int, optimizer: str, hidden: int, ties: str,
                  numeric_columns: list[str]) -> dict[str, Any]:
    """Cross-validate one setting and stage its model (part ``index``) and metrics."""
    lake = Lake(lake_root)
    config = RewardModelConfig(criteria=(criterion,), numeric_columns=tuple(numeric_columns),
                               fit=FitConfig(optimizer=optimizer, hidden=hidden, l2=l2), l2_grid=(l2,),
                               k_folds=k_folds, seeds=(seed,), ties=ties)
    models, metrics = fit_reward_models(lake.read_run(Table.RESPONSES, run_id),
                                        lake.read_run(Table.PREFERENCES, run_id), config)
    models = models.append_column("seed", pa.array([seed] * models.num_rows, pa.int32()))
    lake.write_part(CANDIDATES, run_id, models, spec(CANDIDATES).schema,
                    part=index, staged=True)
    lake.write_part(METRICS, run_id, metrics, METRICS_SCHEMA, part=index, staged=True)
    val = metrics.filter(pc.and_(pc.equal(metrics["split"], "val"), pc.greater_equal(metrics["fold"], 0)))
    return {"index": index, "criterion": criterion, "seed": seed, "l2": l2,
            "val_log_loss": pc.mean(val["log_loss"]).as_py(), "val_accuracy": pc.mean(val["accuracy"]).as_py()}


@task(name="select-reward-models", **IO_RETRY_OPTIONS)
def select_reward_models(run_id: str, lake_root: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """Keep the best candidate per criterion, publish the models, add ``rm_*`` columns to responses."""
    lake = Lake(lake_root)
    lake.commit_partition(METRICS, run_id, expected_parts=len(candidates))
    lake.commit_partition(CANDIDATES, run_id, expected_parts=len(candidates))
    best: dict[str, dict[str, Any]] = {}
    for cand in sorted(candidates, key=lambda c: c["index"]):
        if cand["criterion"] not in best or cand["val_log_loss"] < best[cand["criterion"]]["val_log_loss"]:
            best[cand["criterion"]] = cand
    pool = lake.read_run(CANDIDATES, run_id)
    rows = [pool.filter(pc.and_(pc.equal(pool["criterion"], c["criterion"]),
                                pc.and_(pc.equal(pool["seed"], c["seed"]), pc.equal(pool["l2"], c["l2"]))))
            .slice(0, 1) for c in best.values()]
    models = pa.concat_tables(rows).drop_columns(["seed"]).cast(MODEL_SCHEMA)
    lake.write_partition(MODELS, run_id, models, MODEL_SCHEMA)
    paths = lake.part_paths(Table.RESPONSES, run_id)
    lake.discard_staging(Table.RESPONSES, run_id)
    for index, path in enumerate(paths):
        scored = score_responses(lake.read_part(path), models)
        lake.write_part(Table.RESPONSES, run_id, scored, scored.schema, part=index, staged=True)
    lake.commit_partition(Table.RESPONSES, run_id, expected_parts=len(paths))
    return {"models": best,
            "columns": [f"rm_{c}" for c in best],
            "response_paths": [lake.uri(p) for p in lake.part_paths(Table.RESPONSES, run_id)]}

