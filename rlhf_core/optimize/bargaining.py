"""Nash bargaining point and per-stakeholder regret.

The Nash point maximises ``Σ_s log(u_s − d_s)`` over candidate outcomes that improve on the
disagreement point ``d`` for every stakeholder. By default ``d`` is what a uniformly random
allowed candidate gives (no agreement, no optimisation). Regret of stakeholder ``s`` at the
contract's weights is ``ideal_s − u_s(w_contract)``, the utility it gives up relative to its own
best-of-n (the vertex ``w = e_s`` of the simplex).

References:
    Nash, "The Bargaining Problem", Econometrica 1950.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NashPoint(NamedTuple):
    """Index into the outcomes, its Nash product (log form) and whether any outcome improves."""

    index: int
    log_product: float
    feasible: bool


def nash_point(outcomes: np.ndarray, disagreement: np.ndarray) -> NashPoint:
    """Nash bargaining solution among ``outcomes`` ``[N, S]``.

    Args:
        outcomes: Mean utilities per stakeholder of each candidate outcome (e.g. the front).
        disagreement: ``[S]`` utilities without agreement.

    Returns:
        :class:`NashPoint`; when no outcome strictly improves on ``d`` for every stakeholder,
        ``feasible`` is False and the index is the outcome maximising the smallest gain.
    """
    gains = np.asarray(outcomes, np.float64) - np.asarray(disagreement, np.float64)
    ok = np.all(gains > 0, axis=1)
    if not ok.any():
        idx = int(np.argmax(gains.min(axis=1)))
        return NashPoint(idx, float("-inf"), False)
    logp = np.where(ok, np.sum(np.log(np.where(ok[:, None], gains, 1.0)), axis=1), -np.inf)
    idx = int(np.argmax(logp))
    return NashPoint(idx, float(logp[idx]), True)


def regret(ideal: np.ndarray, at_weights: np.ndarray) -> np.ndarray:
    """``ideal − u(w)`` per stakeholder (non-negative up to float rounding)."""
    return np.asarray(ideal, np.float64) - np.asarray(at_weights, np.float64)
