"""Task ``score-remote``: add a remote reward model's score column to a run's ``responses``.

The task reads the run's ``responses`` partition, scores all its parts in one call to
:func:`rlhf_core.remote.score_table_remote` (batched, retried, breaker-guarded, cached in the
lake's ``score_cache``), rewrites every part with the new column under the same part number (staged,
then committed all at once, so the part paths downstream tasks hold stay valid) and publishes the
quarantined rows to ``score_quarantine``. The client already retries transient HTTP failures itself, so the
task has no Prefect retries: an outage fails it with one clear line, and re-running the task
re-requests only the rows the cache does not hold.
"""

from __future__ import annotations

import posixpath
from typing import Any

import pyarrow as pa
from prefect import task

from rlhf_core.lake.catalog import SCORE_QUARANTINE_SCHEMA, Table
from rlhf_core.lake.store import Lake
from rlhf_core.remote import (
    EndpointConfig,
    ScoreCache,
    attach_scores,
    score_table_remote,
)

RESPONSES = Table.RESPONSES
SCORE_QUARANTINE = Table.SCORE_QUARANTINE


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
        The run's counters (:class:`~rlhf_core.remote.RemoteScoringStats` as a dict) plus the
        score column name and the rewritten ``responses`` part paths (unchanged names).
    """
    config = EndpointConfig.model_validate(endpoint)
    lake = Lake(lake_root)
    paths = lake.part_paths(RESPONSES, run_id)
    if not paths:
        lake.read_table(RESPONSES, run_id=run_id)  # raises the lake's "no partition" error
    parts = [lake.read_part(path) for path in paths]
    responses = pa.concat_tables(parts)
    cache = ScoreCache(run_id, lake, config.cache_flush_rows) if config.cache else None
    scores, quarantine, stats = score_table_remote(
        responses, config, run_id=run_id, token=_secret(token_secret_block), cache=cache)
    lake.discard_staging(RESPONSES, run_id)
    offset = 0
    for path, part in zip(paths, parts, strict=True):
        scored = attach_scores(part, scores.slice(offset, part.num_rows), config.score_column)
        number = int(posixpath.basename(path).removeprefix("part-").removesuffix(".parquet"))
        lake.write_part(RESPONSES, run_id, scored, scored.schema, part=number, staged=True)
        offset += part.num_rows
    published = lake.commit_partition(RESPONSES, run_id)
    lake.write_partition(SCORE_QUARANTINE, run_id, quarantine, SCORE_QUARANTINE_SCHEMA)
    return {**stats.as_dict(), "score_column": config.score_column,
            "response_paths": [lake.uri(p) for p in published]}
