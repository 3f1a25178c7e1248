"""Task ``score-remote``: add a remote reward model's score column to a run's ``responses``.

The task reads the run's ``responses`` partition, scores it with
:func:`rlhf_core.io.remote.score_table_remote` (batched, retried, breaker-guarded, cached in the
lake's ``score_cache``), rewrites the partition with the new column and publishes the quarantined
rows to ``score_quarantine``. The client already retries transient HTTP failures itself, so the
task has no Prefect retries: an outage fails it with one clear line, and re-running the task
re-requests only the rows the cache does not hold.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from rlhf_core.io.lake import PARTITION_KEY, Lake
from rlhf_core.io.remote import (
    QUARANTINE_SCHEMA,
    EndpointConfig,
    ScoreCache,
    attach_scores,
    score_table_remote,
)

RESPONSES = "responses"
SCORE_QUARANTINE = "score_quarantine"


def _secret(block_name: str | None) -> str | None:
    if block_name is None:
        return None
    from prefect.blocks.system import Secret

    return str(Secret.load(block_name).get())


@task(name="score-remote")
def score_remote(
    run_id: str,
    endpoint: EndpointConfig | dict[str, Any],
    lake_root: str,
    token_secret_block: str | None = None,
) -> dict[str, Any]:
    """Score run ``run_id``'s responses remotely and store ``endpoint.score_column`` in them.

    Args:
        run_id: Run whose ``responses`` partition is scored and rewritten.
        endpoint: Endpoint config (or its dict form from a flow parameter model).
        lake_root: Lake root (``RLHF_WIZARD_HOME``).
        token_secret_block: Name of a Prefect ``Secret`` block holding the bearer token (wins
            over ``endpoint.token_env``).

    Returns:
        The run's counters (:class:`~rlhf_core.io.remote.RemoteScoringStats` as a dict) plus the
        score column name.
    """
    config = EndpointConfig.model_validate(endpoint)
    lake = Lake(lake_root)
    responses = lake.read_table(RESPONSES, run_id=run_id).drop_columns([PARTITION_KEY])
    cache = ScoreCache(run_id, lake, config.cache_flush_rows) if config.cache else None
    scores, quarantine, stats = score_table_remote(
        responses, config, run_id=run_id, token=_secret(token_secret_block), cache=cache)
    scored = attach_scores(responses, scores, config.score_column)
    lake.write_partition(RESPONSES, run_id, scored, scored.schema)
    lake.write_partition(SCORE_QUARANTINE, run_id, quarantine, QUARANTINE_SCHEMA)
    return {**stats.as_dict(), "score_column": config.score_column}
