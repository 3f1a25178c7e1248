"""Flow ``score-responses``: every response scored under the contract, in parallel on Dask."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ops.access import guard
from ops.confinement import confined
from ops.runtime import DaskConfig, make_task_runner
from tasks.reporting import publish_score_summary
from tasks.scoring import compute_run_stats, plan_score_shards, publish_scores, score_shard


class ScoreResponsesParams(BaseModel):
    """Parameters of ``score-responses``.

    Attributes:
        contract: Path of the contract YAML.
        contract_hash: Hash the run was validated with (the shards refuse a changed file).
        inputs: Parquet files holding the responses (e.g. the run's ``responses`` partition).
        run_id: Run id; the ``scores`` partition of this id is (re)written.
        lake_root: Lake root (``RLHF_WIZARD_HOME``).
        group_column: Column naming a response's prompt.
        shard_rows: Rows per scoring task.
        keep_groups: Never split a prompt across shards (required when clauses quantify).
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    contract: str
    contract_hash: str
    inputs: list[str] = Field(min_length=1)
    run_id: str
    lake_root: str
    group_column: str = "prompt_id"
    shard_rows: int = Field(default=250_000, ge=1)
    keep_groups: bool = True
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="score-responses", task_runner=make_task_runner(DaskConfig()), log_prints=True)
def score_responses(params: ScoreResponsesParams) -> dict:
    """Plan shards -> score each shard on a worker -> publish the partition -> summarise."""
    params = confined(params, "score-responses", data=("contract",), lake_files=("inputs",))
    guard(params, "run", contract=params.contract)
    shards = plan_score_shards(params.inputs, params.group_column, params.shard_rows, params.keep_groups)
    # ``... IN run`` normalisations need statistics of the whole run: computed once, read by every
    # shard (None, and nothing read, for contracts without them).
    stats = compute_run_stats(params.contract, params.contract_hash, shards, params.run_id,
                              params.lake_root)
    futures = [
        score_shard.submit(params.contract, params.contract_hash, shard, params.run_id,
                           params.lake_root, run_stats=stats)
        for shard in shards
    ]
    results = [future.result() for future in futures]
    paths = publish_scores(params.run_id, len(shards), params.lake_root)
    summary = publish_score_summary(params.run_id, params.lake_root, paths)
    busy = (max(r["ended"] for r in results) - min(r["started"] for r in results)) if results else 0.0
    return {"rows": sum(r["rows"] for r in results), "shards": len(shards), "paths": paths,
            "scoring_seconds": busy, **summary}


def score_responses_with(params: ScoreResponsesParams, dask: DaskConfig,
                         rows: int | None = None) -> dict:
    """Run ``score-responses`` on the Dask cluster described by ``dask`` (in-process for a
    run of at most ``dask.in_process_max_rows`` rows)."""
    return score_responses.with_options(task_runner=make_task_runner(dask, rows))(params)
