"""A per-endpoint circuit breaker: closed -> open -> half-open -> closed.

- **closed**: calls pass; ``failure_threshold`` consecutive transient failures open the circuit.
- **open**: calls fail fast with :class:`~rlhf_core.errors.CircuitOpenError` until
  ``reset_timeout_s`` has passed since it opened.
- **half-open**: exactly one probe call passes (others fail fast); its success closes the circuit,
  its failure re-opens it for another ``reset_timeout_s``.

A call that got *an answer* (2xx, a 4xx, even a malformed body) proves the server is up and counts
as a success for the breaker; a 429 is neutral (the server is up but busy). The breaker is used from
one event loop and never awaits, so it needs no lock.

:func:`shared_breaker` keeps one breaker per endpoint (and policy) per process, so a second run
against an endpoint that just tripped fails fast without sending anything until the reset timeout
lets a probe through.

References:
    Nygard, M. "Release It!", 2nd ed., ch. 5 "Circuit Breaker", 2018.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from rlhf_core.errors import CircuitOpenError
from rlhf_core.remote.config import BreakerPolicy

BreakerState = Literal["closed", "open", "half_open"]

__all__ = ["BreakerState", "CircuitBreaker", "reset_shared_breakers", "shared_breaker"]


class CircuitBreaker:
    """Circuit breaker for one endpoint.

    Args:
        name: The endpoint (used in error messages).
        policy: Threshold and reset timeout.
        clock: Monotonic clock in seconds (inject a fake one in tests).
    """

    def __init__(
        self, name: str, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.last_failure: str | None = None
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        """Current state (an open circuit past its reset timeout reports ``half_open``)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.policy.reset_timeout_s:
            return "half_open"
        return self._state

    @property
    def probe_in_flight(self) -> bool:
        """Whether a half-open probe is out (callers may wait for its verdict)."""
        return self._probe_in_flight

    def before_call(self) -> None:
        """Ask permission for one call.

        Raises:
            CircuitOpenError: If the circuit is open, or half-open with the probe already out.
        """
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._probe_in_flight:
            self._state = "half_open"
            self._probe_in_flight = True
            return
        wait = max(0.0, self.policy.reset_timeout_s - (self._clock() - self._opened_at))
        detail = "a probe request is in flight" if state == "half_open" else f"retry in {wait:.1f}s"
        raise CircuitOpenError(
            f"circuit open for {self.name}: {self._consecutive_failures} consecutive transient "
            f"failures (last: {self.last_failure}); {detail}; check the endpoint, then re-run "
            "(cached scores are kept)"
        )

    def record_success(self) -> None:
        """The call got an answer from the server: close the circuit."""
        self._state = "closed"
        self._consecutive_failures = 0
        self._probe_in_flight = False

    def record_neutral(self) -> None:
        """The call neither proves nor disproves health (e.g. 429): release a half-open probe."""
        self._probe_in_flight = False

    def record_failure(self, reason: str) -> None:
        """The call failed transiently (5xx, connection error, timeout).

        Args:
            reason: Short description for the error message (never includes credentials).
        """
        self.last_failure = reason
        self._consecutive_failures += 1
        was_probe = self._probe_in_flight
        self._probe_in_flight = False
        if was_probe or (
            self._state == "closed" and self._consecutive_failures >= self.policy.failure_threshold
        ):
            self._state = "open"
            self._opened_at = self._clock()
            self.times_opened += 1

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state!r})"


_SHARED: dict[tuple[str, BreakerPolicy], CircuitBreaker] = {}


def shared_breaker(name: str, policy: BreakerPolicy) -> CircuitBreaker:
    """The process-wide breaker of endpoint ``name`` under ``policy`` (created on first use).

    Args:
        name: Endpoint URL.
        policy: Thresholds (a different policy gets its own breaker).

    Returns:
        The shared :class:`CircuitBreaker`.
    """
    key = (name, policy)
    if key not in _SHARED:
        _SHARED[key] = CircuitBreaker(name, policy)
    return _SHARED[key]


def shared_breakers() -> list[CircuitBreaker]:
    """Every process-wide breaker created so far (for metrics and health reports)."""
    return list(_SHARED.values())


def reset_shared_breakers() -> None:
    """Forget every shared breaker (all endpoints start closed again), e.g. between tests."""
    _SHARED.clear()
