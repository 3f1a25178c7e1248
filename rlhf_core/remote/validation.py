"""Turn an endpoint's raw per-row values into finite floats, or say why the batch is rejected."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rlhf_core.errors import RemoteResponseError

__all__ = ["validate_scores"]


def validate_scores(values: Sequence[Any], expected: int) -> list[float]:
    """Check one batch's answer: exactly ``expected`` finite numbers.

    Booleans and numeric strings are rejected (a server that answers ``"0.5"`` or ``true`` is not
    speaking the agreed format, and guessing would hide a misconfigured wire format).

    Args:
        values: Raw values extracted by the wire format, in row order.
        expected: Number of rows sent.

    Returns:
        The scores as Python floats, in row order.

    Raises:
        RemoteResponseError: On a wrong count, a non-numeric value or a non-finite value; the
            message names the first offending position.
    """
    if len(values) != expected:
        raise RemoteResponseError(f"wrong result count: {len(values)} scores for {expected} rows")
    scores: list[float] = []
    for position, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RemoteResponseError(
                f"non-numeric score at position {position}: {type(value).__name__} {_short(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise RemoteResponseError(f"non-finite score at position {position}: {number}")
        scores.append(number)
    return scores


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
