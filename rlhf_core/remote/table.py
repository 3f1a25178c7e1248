"""Score a whole table against a remote endpoint: cache, batching, concurrency, quarantine.

:func:`ascore_table_remote` (and its blocking twin :func:`score_table_remote`) deduplicates the
rows by cache key, takes what the lake's ``score_cache`` already holds, sends the rest in batches
of ``batch_size`` with at most ``max_concurrency`` requests in flight, and returns a score column
aligned with the input, the quarantined rows with their reasons, and counters. Every validated
batch is added to the cache as it lands and the cache is flushed even when the run fails, so a
re-run sends only what is still missing. Rows are conserved:
``rows == rows_scored + rows_quarantined + rows_failed``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import pyarrow as pa
from pydantic import SecretStr

from rlhf_core.errors import (
    RemoteResponseError,
    RemoteRetriesExhaustedError,
    RemoteScoringError,
    SchemaMismatchError,
)
from rlhf_core.lake.catalog import SCORE_QUARANTINE_SCHEMA
from rlhf_core.remote.cache import ScoreCache, cache_key
from rlhf_core.remote.client import RemoteScorer
from rlhf_core.remote.config import EndpointConfig

logger = logging.getLogger(__name__)

__all__ = [
    "RemoteScoringStats",
    "ascore_table_remote",
    "attach_scores",
    "score_table_remote",
]


@dataclass(frozen=True)
class RemoteScoringStats:
    """Counters of one scoring run (rows count input rows; batches and requests count HTTP work).

    Attributes:
        rows: Input rows.
        unique_payloads: Distinct cache keys among them.
        cached_payloads: Distinct keys found in the cache before sending anything.
        cache_hits: Rows answered from the lake cache.
        rows_scored: Rows with a score (cache hits included).
        rows_quarantined: Rows whose batch answer was unusable.
        rows_failed: Rows left unscored by transient failures or an aborted run.
        batches: Batches planned for the cache misses.
        batches_quarantined: Batches quarantined.
        batches_failed: Batches that failed or were never sent because the run stopped.
        http_requests: HTTP requests sent, retries included.
        retries: Retried attempts.
        cache_files: Part files written to the cache this run.
        breaker_state: Breaker state at the end.
        elapsed_s: Wall time of the run.
    """

    rows: int
    unique_payloads: int
    cached_payloads: int
    cache_hits: int
    rows_scored: int
    rows_quarantined: int
    rows_failed: int
    batches: int
    batches_quarantined: int
    batches_failed: int
    http_requests: int
    retries: int
    cache_files: int
    breaker_state: str
    elapsed_s: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (e.g. a Prefect task result or artifact)."""
        return asdict(self)


def _column(table: pa.Table, name: str, role: str) -> list[str]:
    if name not in table.column_names:
        raise SchemaMismatchError(f"remote scoring needs a {role} column {name!r}; the table has "
                                  f"{', '.join(table.column_names)}; set {role}_column in the config")
    values = table.column(name).to_pylist()
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise SchemaMismatchError(f"{role} column {name!r} row {index} is "
                                      f"{type(value).__name__}, expected a string")
    return values


async def ascore_table_remote(
    table: pa.Table,
    config: EndpointConfig,
    *,
    run_id: str,
    token: SecretStr | str | None = None,
    cache: ScoreCache | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    transport: httpx.AsyncBaseTransport | None = None,
    raise_on_failure: bool = True,
) -> tuple[pa.Table, pa.Table, RemoteScoringStats]:
    """Score every row of ``table`` with a remote reward model.

    Args:
        table: Rows with ``config.prompt_column`` and ``config.response_column`` (strings).
        config: Endpoint configuration.
        run_id: Run id (the cache partition new scores go to).
        token: Explicit bearer token (else ``config.token_env``; never logged).
        cache: Score cache; default: the lake's (``$RLHF_WIZARD_HOME/lake``) unless
            ``config.cache`` is false.
        rng: Backoff jitter source (seed it for reproducible tests).
        sleep: Awaitable sleep used for backoff.
        transport: Optional httpx transport.
        raise_on_failure: Raise when rows stay unscored (default); else return them as nulls.

    Returns:
        ``(scores, quarantine, stats)``: ``scores`` has ``row_index`` (int64), the score column
        (float64, null when quarantined or unscored) and ``cache_key``, one row per input row in
        input order; ``quarantine`` follows :data:`SCORE_QUARANTINE_SCHEMA`.

    Raises:
        SchemaMismatchError: Missing or non-string text columns.
        CircuitOpenError: The breaker opened (outage); scores landed so far are cached.
        RemoteRetriesExhaustedError: Some batches failed every retry; the rest are cached.
        RemoteScoringError: The endpoint refused the requests (401/403/404/405) or a bad token env.
        LakeError: The cache could not be read or written.
    """
    started = time.perf_counter()
    prompts = _column(table, config.prompt_column, "prompt")
    responses = _column(table, config.response_column, "response")
    if cache is None and config.cache:
        cache = ScoreCache(run_id, flush_rows=config.cache_flush_rows)
    endpoint = config.endpoint_url
    async with RemoteScorer(config, token=token, rng=rng, sleep=sleep, transport=transport) as scorer:
        keys = [cache_key(endpoint, config.model_id, scorer.wire.row_payload(p, r))
                for p, r in zip(prompts, responses, strict=True)]
        first_row: dict[str, int] = {}
        for index, key in enumerate(keys):
            first_row.setdefault(key, index)
        known: dict[str, float] = cache.lookup(first_row) if cache is not None else {}
        cached = len(known)
        missing = [key for key in first_row if key not in known]
        size = config.batch_size
        batches = [missing[i:i + size] for i in range(0, len(missing), size)]
        reasons: dict[str, str] = {}
        failures: list[RemoteScoringError] = []
        fatal: list[Exception] = []
        stop = asyncio.Event()
        limit = asyncio.Semaphore(config.max_concurrency)

        async def run(batch: list[str]) -> None:
            async with limit:
                if stop.is_set():
                    return
                rows = [first_row[k] for k in batch]
                try:
                    scores = await scorer.score_batch([prompts[i] for i in rows],
                                                      [responses[i] for i in rows])
                except RemoteResponseError as exc:
                    reasons.update(dict.fromkeys(batch, str(exc)))
                except RemoteRetriesExhaustedError as exc:
                    failures.append(exc)
                except Exception as exc:  # noqa: BLE001 - breaker/fatal/lake: stop, re-raised below
                    fatal.append(exc)
                    stop.set()
                else:
                    known.update(zip(batch, scores, strict=True))
                    if cache is not None:
                        cache.add(batch, scores, endpoint, config.model_id)

        try:
            await asyncio.gather(*(run(batch) for batch in batches))
        finally:
            if cache is not None:
                cache.flush()
        counters = scorer.counters
        breaker_state = scorer.breaker.state

    score_values = [known.get(key) for key in keys]
    quarantined = [i for i, key in enumerate(keys) if key in reasons]
    ids = (table.column(config.id_column).cast(pa.string()).to_pylist()
           if config.id_column in table.column_names else [None] * len(keys))
    quarantine = pa.table(
        [quarantined, [ids[i] for i in quarantined], [keys[i] for i in quarantined],
         [reasons[keys[i]] for i in quarantined], [endpoint] * len(quarantined)],
        schema=SCORE_QUARANTINE_SCHEMA,
    )
    scores_table = pa.table({
        "row_index": pa.array(range(len(keys)), pa.int64()),
        config.score_column: pa.array(score_values, pa.float64()),
        "cache_key": pa.array(keys, pa.string()),
    })
    missing_set = set(missing)
    scored = sum(value is not None for value in score_values)
    stats = RemoteScoringStats(
        rows=len(keys), unique_payloads=len(first_row), cached_payloads=cached,
        cache_hits=sum(1 for key in keys if key not in missing_set),
        rows_scored=scored, rows_quarantined=len(quarantined),
        rows_failed=len(keys) - scored - len(quarantined), batches=len(batches),
        batches_quarantined=sum(1 for b in batches if b[0] in reasons),
        batches_failed=sum(1 for b in batches if b[0] not in known and b[0] not in reasons),
        http_requests=counters.requests, retries=counters.retries,
        cache_files=len(cache.files_written) if cache is not None else 0,
        breaker_state=breaker_state, elapsed_s=time.perf_counter() - started,
    )
    logger.info("remote scoring %s run %s: %s", endpoint, run_id, stats.as_dict())
    if stats.rows_failed and raise_on_failure:
        cause = fatal[0] if fatal else failures[0]
        if not isinstance(cause, RemoteScoringError):
            raise cause
        kept, rerun = (("scored and cached", "only unscored rows are re-requested")
                       if cache is not None else ("scored, cache off", "every row is re-requested"))
        raise type(cause)(
            f"{endpoint} run {run_id}: {stats.rows_failed} of {stats.rows} rows unscored "
            f"({stats.rows_scored} {kept}, {stats.rows_quarantined} quarantined); re-run after "
            f"fixing the cause ({rerun}). Cause: {cause}") from cause
    if fatal and raise_on_failure:
        raise fatal[0]
    return scores_table, quarantine, stats


def score_table_remote(
    table: pa.Table, config: EndpointConfig, **kwargs: Any
) -> tuple[pa.Table, pa.Table, RemoteScoringStats]:
    """Blocking wrapper of :func:`ascore_table_remote` (runs its own event loop).

    Call it from synchronous code (CLI, Prefect task); inside a running event loop await
    :func:`ascore_table_remote` instead.

    Args:
        table: Rows to score.
        config: Endpoint configuration.
        **kwargs: Keyword arguments of :func:`ascore_table_remote` (``run_id`` is required).

    Returns:
        ``(scores, quarantine, stats)`` as :func:`ascore_table_remote`.
    """
    return asyncio.run(ascore_table_remote(table, config, **kwargs))


def attach_scores(table: pa.Table, scores: pa.Table, column: str) -> pa.Table:
    """``table`` with the score column from :func:`score_table_remote` added (or replaced).

    Args:
        table: The table that was scored (same rows, same order).
        scores: The ``scores`` table returned for it.
        column: The score column name (``config.score_column``).

    Returns:
        ``table`` plus a nullable float64 ``column`` (null for quarantined or unscored rows).

    Raises:
        SchemaMismatchError: If the row counts differ.
    """
    if scores.num_rows != table.num_rows:
        raise SchemaMismatchError(f"score column has {scores.num_rows} rows but the table has "
                                  f"{table.num_rows}; score the same table you attach to")
    values = scores.column(column)
    field = pa.field(column, pa.float64(), nullable=True)
    if column in table.column_names:
        return table.set_column(table.column_names.index(column), field, values)
    return table.append_column(field, values)
