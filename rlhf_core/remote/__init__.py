"""Remote reward-model scoring: async batched client with retries, breaker, cache, quarantine.

Typical use::

    from rlhf_core.remote import EndpointConfig, score_table_remote

    config = EndpointConfig(url="http://rm:8080", kind="tei", score_column="rm_score")
    scores, quarantine, stats = score_table_remote(responses, config, run_id="run-1")
"""

from rlhf_core.remote.breaker import (
    BreakerState,
    CircuitBreaker,
    reset_shared_breakers,
    shared_breaker,
)
from rlhf_core.remote.cache import ScoreCache, cache_key
from rlhf_core.remote.client import ClientCounters, RemoteScorer
from rlhf_core.remote.config import BreakerPolicy, EndpointConfig, RetryPolicy, resolve_token
from rlhf_core.remote.jsonpath import JsonPath
from rlhf_core.remote.table import (
    RemoteScoringStats,
    ascore_table_remote,
    attach_scores,
    score_table_remote,
)

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "ClientCounters",
    "EndpointConfig",
    "JsonPath",
    "RemoteScorer",
    "RemoteScoringStats",
    "RetryPolicy",
    "ScoreCache",
    "ascore_table_remote",
    "attach_scores",
    "cache_key",
    "reset_shared_breakers",
    "resolve_token",
    "score_table_remote",
    "shared_breaker",
]
