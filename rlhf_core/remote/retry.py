"""Which failures are transient, and how long to wait before the next attempt.

Backoff is "full jitter": the wait before retry ``n`` (0-based) is uniform on
``[0, min(cap, base * 2**n)]``, which spreads a thundering herd of clients better than equal or
decorrelated jitter. A server's ``Retry-After`` (delta-seconds or an HTTP-date) wins over the
jittered wait when it asks for longer.

References:
    Brooker, M. "Exponential Backoff And Jitter", AWS Architecture Blog, 2015.
    RFC 9110, section 10.2.3 (Retry-After).
"""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime

from rlhf_core.remote.config import RetryPolicy

__all__ = ["backoff_delay", "is_transient_status", "parse_retry_after", "retry_delay"]


def is_transient_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: 429 (rate limited) and every 5xx."""
    return status == 429 or 500 <= status <= 599


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    Args:
        value: The header value: delta-seconds (``"3"``) or an HTTP-date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``); ``None`` when absent.
        now: The current time for HTTP-dates (default: the system clock, UTC).

    Returns:
        Non-negative seconds, or ``None`` if the header is absent or unparseable.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def backoff_delay(retry_index: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full-jitter exponential backoff.

    Args:
        retry_index: 0 for the wait before the first retry, 1 before the second, ...
        policy: Base and cap.
        rng: Random source (seed it for reproducible tests).

    Returns:
        Seconds, uniform on ``[0, min(backoff_max_s, backoff_base_s * 2**retry_index)]``.
    """
    window = min(policy.backoff_max_s, policy.backoff_base_s * (2.0 ** min(retry_index, 60)))
    return rng.uniform(0.0, window)


def retry_delay(
    retry_index: int, policy: RetryPolicy, rng: random.Random, retry_after: float | None
) -> float:
    """The wait before the next attempt: the jittered backoff, or ``Retry-After`` if longer.

    Args:
        retry_index: 0-based index of the retry about to happen.
        policy: Retry policy.
        rng: Random source.
        retry_after: Seconds parsed from ``Retry-After`` (``None`` if absent).

    Returns:
        Seconds to sleep (the caller checks ``retry_after_max_s`` first).
    """
    jittered = backoff_delay(retry_index, policy, rng)
    return jittered if retry_after is None else max(retry_after, jittered)
