"""Async HTTP client for one reward-model endpoint: pooling, timeouts, retries and the breaker.

One :class:`RemoteScorer` wraps one pooled ``httpx.AsyncClient``. :meth:`RemoteScorer.score_batch`
sends one batch and returns one finite score per row, or raises a typed error that tells the
caller what to do with the batch:

- :class:`~rlhf_core.errors.RemoteResponseError`: the server answered but the batch is unusable
  (malformed JSON, wrong count, non-numeric or non-finite scores, a 4xx such as 400/413/422 about
  this batch's content): quarantine the rows with the message as reason; no retry.
- :class:`~rlhf_core.errors.RemoteRetriesExhaustedError`: transient failures (connect errors,
  timeouts, resets, 429, 5xx) outlasted the retry policy: leave the rows unscored.
- :class:`~rlhf_core.errors.CircuitOpenError`: the endpoint's breaker is open: stop the run.
- :class:`~rlhf_core.errors.RemoteScoringError`: the endpoint refuses every request (401, 403,
  404, 405): stop the run and fix the config or credentials.

The bearer token is set once as a default header; httpx masks ``Authorization`` in header reprs
and this module never formats headers into messages. Server error bodies quoted in messages are
cut short and scrubbed of the token.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from rlhf_core.errors import (
    CircuitOpenError,
    RemoteResponseError,
    RemoteRetriesExhaustedError,
    RemoteScoringError,
)
from rlhf_core.remote.breaker import CircuitBreaker, shared_breaker
from rlhf_core.remote.config import EndpointConfig, resolve_token
from rlhf_core.remote.retry import is_transient_status, parse_retry_after, retry_delay
from rlhf_core.remote.validation import validate_scores
from rlhf_core.remote.wire import WireFormat, make_wire

FATAL_STATUSES = frozenset({401, 403, 404, 405})
"""4xx answers that no batch can fix: wrong credentials or URL."""

PROBE_POLL_S = 0.01
"""How often a batch waiting on a half-open probe checks the breaker again."""

PROBE_WAIT_TIMEOUTS = 4
"""A batch waits for a half-open probe's verdict at most the connect timeout plus this many
request timeouts (pool, write, read and a margin): one request cannot honestly take longer, so a
probe still out by then is lost, and the wait ends with a one-line error instead of forever."""

__all__ = ["ClientCounters", "RemoteScorer"]


@dataclass
class ClientCounters:
    """What the client did (mutable; read after the run).

    Attributes:
        requests: HTTP requests sent (attempts, retries included).
        retries: Attempts after the first, over all batches.
        transient_failures: Attempts that failed transiently.
        slept_s: Total backoff sleep requested.
    """

    requests: int = 0
    retries: int = 0
    transient_failures: int = 0
    slept_s: float = 0.0


class RemoteScorer:
    """Scores batches of (prompt, response) pairs against one endpoint.

    Use as ``async with RemoteScorer(config) as scorer: await scorer.score_batch(p, r)``.

    Args:
        config: Endpoint configuration.
        token: Explicit bearer token (wins over ``config.token_env``).
        rng: Random source for backoff jitter (seed it in tests).
        sleep: Awaitable sleep (inject a recorder in tests).
        breaker: Circuit breaker; default: the process-wide one of this endpoint
            (:func:`~rlhf_core.remote.breaker.shared_breaker`).
        transport: Optional httpx transport (e.g. to bind a local address); default: TCP.

    Raises:
        RemoteScoringError: If ``token_env`` names an unset variable.
    """

    def __init__(
        self,
        config: EndpointConfig,
        *,
        token: SecretStr | str | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.wire: WireFormat = make_wire(config)
        self._token = resolve_token(config, token)
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._transport = transport
        self.breaker = breaker if breaker is not None else shared_breaker(
            config.endpoint_url, config.breaker)
        self.counters = ClientCounters()
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> RemoteScorer:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        cfg = self.config
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(cfg.timeout_s, connect=cfg.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=cfg.max_connections,
                max_keepalive_connections=cfg.max_connections,
            ),
            transport=self._transport,
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def score_batch(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Send one batch (with retries) and return its validated scores.

        Args:
            prompts: Prompt texts.
            responses: Response texts, aligned with ``prompts``.

        Returns:
            One finite float per row, in row order.

        Raises:
            RemoteResponseError: Unusable answer (quarantine the batch).
            RemoteRetriesExhaustedError: Transient failures outlasted the retry policy.
            CircuitOpenError: The breaker is open.
            RemoteScoringError: A 401/403/404/405 (fix the config) or client not entered.
        """
        if self._client is None:
            raise RemoteScoringError("RemoteScorer used outside 'async with'; enter it first")
        body = self.wire.build_body(prompts, responses)
        policy = self.config.retry
        url = self.config.endpoint_url
        last = "no attempt made"
        for attempt in range(policy.max_attempts):
            if attempt > 0:
                self.counters.retries += 1
            await self._admit()
            self.counters.requests += 1
            retry_after: float | None = None
            try:
                answer = await self._client.post(url, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__} ({_scrub(str(exc), self._token) or 'no detail'})"
                self.breaker.record_failure(last)
            except BaseException:
                # Cancelled, or failed in a way that says nothing about the endpoint: a half-open
                # probe must not stay out for ever (every other batch would wait on it).
                self.breaker.record_neutral()
                raise
            else:
                status = answer.status_code
                if not is_transient_status(status):
                    self.breaker.record_success()
                    return self._accept(answer, len(prompts))
                last = f"HTTP {status}"
                if status == 429:
                    self.breaker.record_neutral()
                else:
                    self.breaker.record_failure(last)
                retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            self.counters.transient_failures += 1
            if attempt + 1 == policy.max_attempts:
                break
            if retry_after is not None and retry_after > policy.retry_after_max_s:
                raise RemoteRetriesExhaustedError(
                    f"{url}: server asked to retry after {retry_after:.0f}s, more than "
                    f"retry_after_max_s={policy.retry_after_max_s:.0f}s ({last}); raise the limit "
                    "or re-run later")
            delay = retry_delay(attempt, policy, self._rng, retry_after)
            self.counters.slept_s += delay
            await self._sleep(delay)
        raise RemoteRetriesExhaustedError(
            f"{url}: batch of {len(prompts)} rows failed {policy.max_attempts} attempts "
            f"(last: {last}); the rows stay unscored, re-run when the endpoint is healthy")

    @property
    def probe_wait_s(self) -> float:
        """How long a batch waits for a half-open probe's verdict (see :data:`PROBE_WAIT_TIMEOUTS`)."""
        return self.config.connect_timeout_s + PROBE_WAIT_TIMEOUTS * self.config.timeout_s

    async def _admit(self) -> None:
        """Pass the breaker; while a half-open probe is out, wait for its verdict instead of
        failing, at most :attr:`probe_wait_s`.

        Raises:
            CircuitOpenError: The circuit is open, or the probe gave no verdict in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.probe_wait_s
        while loop.time() < deadline:
            try:
                self.breaker.before_call()
                return
            except CircuitOpenError:
                if not self.breaker.probe_in_flight:
                    raise
            await asyncio.sleep(PROBE_POLL_S)
        raise CircuitOpenError(
            f"circuit half-open for {self.config.endpoint_url}: the probe request gave no verdict "
            f"within {self.probe_wait_s:.0f}s (connect_timeout_s + {PROBE_WAIT_TIMEOUTS} x "
            "timeout_s); check the endpoint, then re-run (cached scores are kept)")

    def _accept(self, answer: httpx.Response, expected: int) -> list[float]:
        status = answer.status_code
        if status in FATAL_STATUSES:
            raise RemoteScoringError(
                f"{self.config.endpoint_url} answered HTTP {status} "
                f"({_scrub(answer.text, self._token)}); check the URL, path and bearer token "
                f"({self.config.token_env or 'no token_env set'})")
        if 300 <= status < 400:
            raise RemoteScoringError(
                f"{self.config.endpoint_url} answered HTTP {status} redirecting to "
                f"{answer.headers.get('Location', '?')}; set url/path to the final location")
        if status >= 400:
            raise RemoteResponseError(
                f"HTTP {status} for this batch: {_scrub(answer.text, self._token)}")
        try:
            document = answer.json()
        except ValueError as exc:
            raise RemoteResponseError(f"malformed JSON in answer: {_scrub(str(exc), self._token)}") from None
        return validate_scores(self.wire.extract(document), expected)

    def __repr__(self) -> str:
        return (f"RemoteScorer({self.config.endpoint_url!r}, kind={self.config.kind!r}, "
                f"auth={'bearer' if self._token is not None else 'none'})")


def _scrub(text: str, token: SecretStr | None, limit: int = 160) -> str:
    """Shorten ``text`` to one line and mask the token if a server echoed it."""
    line = " ".join(text.split())
    if token is not None and token.get_secret_value():
        line = line.replace(token.get_secret_value(), "***")
    return line if len(line) <= limit else line[: limit - 3] + "..."
