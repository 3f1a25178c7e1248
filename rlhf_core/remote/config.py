"""Validated configuration of one remote reward-model endpoint.

The config is plain data (pydantic, YAML-friendly) and never holds the bearer token itself: it
names the environment variable that does (``token_env``); the token is resolved once, when a
client is built, into a :class:`pydantic.SecretStr` whose ``repr`` and ``str`` are masked.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from rlhf_core.errors import RemoteScoringError

EndpointKind = Literal["tei", "vllm_score", "vllm_pooling", "generic"]

DEFAULT_PATHS: dict[str, str] = {
    "tei": "/predict",
    "vllm_score": "/score",
    "vllm_pooling": "/pooling",
    "generic": "/",
}

__all__ = ["BreakerPolicy", "EndpointConfig", "EndpointKind", "RetryPolicy", "resolve_token"]


class RetryPolicy(BaseModel):
    """When and how long to wait before re-sending a batch after a transient failure.

    Attributes:
        max_attempts: Attempts per batch, the first one included.
        backoff_base_s: Upper bound of the first jittered wait; it doubles per attempt.
        backoff_max_s: Cap of the jitter window.
        retry_after_max_s: Longest ``Retry-After`` honoured; a server asking for more fails the
            batch instead of stalling the run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(6, ge=1, le=50)
    backoff_base_s: float = Field(0.25, ge=0.0)
    backoff_max_s: float = Field(20.0, ge=0.0)
    retry_after_max_s: float = Field(60.0, ge=0.0)


class BreakerPolicy(BaseModel):
    """Circuit-breaker thresholds for one endpoint.

    Attributes:
        failure_threshold: Consecutive transient failures (5xx, connection errors, timeouts) that
            open the circuit.
        reset_timeout_s: Time the circuit stays open before one probe request is let through.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_threshold: int = Field(10, ge=1)
    reset_timeout_s: float = Field(30.0, ge=0.0)


class EndpointConfig(BaseModel):
    """One reward-model endpoint and how to talk to it.

    Attributes:
        url: Base URL (``http://host:port``); ``path`` is appended.
        kind: Wire format: ``tei`` (Text Embeddings Inference ``/predict``), ``vllm_score``
            (vLLM ``/score``), ``vllm_pooling`` (vLLM ``/pooling`` with a reward model) or
            ``generic`` (``request_template`` + ``response_path``).
        path: Request path; defaults per kind (``/predict``, ``/score``, ``/pooling``, ``/``).
        model_id: Model name sent to vLLM and part of every cache key.
        prompt_column: Column holding the prompt text.
        response_column: Column holding the response text.
        score_column: Name of the score column to produce.
        id_column: Row id column copied into the quarantine table when present.
        batch_size: Rows per request.
        max_concurrency: Requests in flight at once.
        max_connections: Connection-pool size.
        timeout_s: Per-request read/write/pool timeout.
        connect_timeout_s: TCP connect timeout.
        token_env: Environment variable holding a bearer token (``None``: no auth header).
        tei_label: TEI label whose score is the reward (``None``: the only label returned).
        tei_raw_scores: Ask TEI for raw logits instead of softmaxed probabilities.
        pooling_text_template: vLLM pooling input text, with ``{prompt}`` and ``{response}``.
        request_template: Generic request body; see :mod:`rlhf_core.remote.wire`.
        item_template: Generic per-row object substituted for ``"{{items}}"``.
        response_path: Generic dotted path to the scores, e.g. ``result.outputs[*].reward``.
        retry: Retry policy.
        breaker: Circuit-breaker policy.
        cache: Whether to read and write the lake score cache.
        cache_flush_rows: Cached scores buffered before an atomic Parquet flush.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(..., pattern=r"^https?://[^\s/]+")
    kind: EndpointKind = "tei"
    path: str | None = None
    model_id: str = "reward-model"
    prompt_column: str = "prompt"
    response_column: str = "response"
    score_column: str = "rm_score"
    id_column: str = "response_id"
    batch_size: int = Field(64, ge=1, le=4096)
    max_concurrency: int = Field(16, ge=1, le=1024)
    max_connections: int = Field(32, ge=1)
    timeout_s: float = Field(30.0, gt=0.0)
    connect_timeout_s: float = Field(5.0, gt=0.0)
    token_env: str | None = None
    tei_label: str | None = None
    tei_raw_scores: bool = True
    pooling_text_template: str = "{prompt}\n{response}"
    request_template: dict[str, Any] | None = None
    item_template: dict[str, Any] | None = None
    response_path: str | None = None
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    cache: bool = True
    cache_flush_rows: int = Field(8192, ge=1)

    @model_validator(mode="after")
    def _generic_needs_template(self) -> EndpointConfig:
        if self.kind == "generic" and (self.request_template is None or not self.response_path):
            raise ValueError("kind 'generic' needs request_template and response_path")
        return self

    @property
    def request_path(self) -> str:
        """The request path (explicit ``path`` or the kind's default)."""
        path = self.path if self.path is not None else DEFAULT_PATHS[self.kind]
        return path if path.startswith("/") else "/" + path

    @property
    def endpoint_url(self) -> str:
        """Full URL requests are posted to."""
        return self.url.rstrip("/") + self.request_path


def resolve_token(config: EndpointConfig, token: SecretStr | str | None = None) -> SecretStr | None:
    """The bearer token: an explicit one (e.g. from a Prefect Secret block) or ``token_env``.

    Args:
        config: Endpoint config naming ``token_env``.
        token: Explicit token; wins over the environment.

    Returns:
        The masked token, or ``None`` when the endpoint needs no auth.

    Raises:
        RemoteScoringError: If ``token_env`` is set but the variable is missing or empty.
    """
    if token is not None:
        return token if isinstance(token, SecretStr) else SecretStr(token)
    if config.token_env is None:
        return None
    value = os.environ.get(config.token_env, "")
    if not value:
        raise RemoteScoringError(
            f"endpoint {config.endpoint_url}: environment variable {config.token_env} holding the "
            "bearer token is not set; export it or drop token_env from the endpoint config"
        )
    return SecretStr(value)
