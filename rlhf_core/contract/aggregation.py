"""The five aggregation rules of a reward contract (docs/contracts.md#aggregation-rules), as
pure array functions.

Every rule maps a utility matrix ``u`` of shape ``[rows, k]`` (float32; column ``i`` is
stakeholder ``i`` in declaration order) to a reward vector ``[rows]``. The functions accept
``jax.Array`` or ``numpy.ndarray`` and stay in that namespace, so the same code is traced into
the compiled JAX contract and runs eagerly as the NumPy baseline. Sums over stakeholders are
unrolled in declaration order so that every engine (JAX, NumPy, DuckDB SQL) adds in the same
order.

Lexicographic rule. ``lex_compare`` is the exact comparator: compare the first stakeholder of
the order; only when ``|diff| <= tol`` move to the next; all within tolerance -> 0. The scalar
used as a training reward is ``R = sum_j c_j (u_j - lo_j)`` with coefficients from
``lex_coefficients``: ``c = 1`` for the first stakeholder of the order and
``c_next = c_prev * t_prev / (2 D_next)`` (``D`` = width of the utility's interval, ``t`` = the
tolerance, or ``D / 1024`` of that stakeholder when the tolerance is 0). The tail of lower
priorities then weighs at most ``c_j t_j`` while a decisive difference weighs more than that,
so the scalar reproduces the comparator's order exactly whenever every stakeholder's utilities
are *quantised by the tolerance*: any two values are equal or differ by more than ``t_j`` (e.g.
Likert ratings on a grid coarser than the tolerance). Limits: the comparator with tolerance is
not transitive on arbitrary reals, so no scalar can reproduce it there; and float32 keeps ~7
significant digits, so once ``prod(t / 2D)`` falls under ~1e-7 lower priorities are lost in the
scalar (use ``lex_compare`` / ``lex_sort_key`` for exact ranking). A stakeholder whose interval is
no wider than the tolerance is never decisive and gets coefficient 0.

References:
    Miettinen, K. (1999). Nonlinear Multiobjective Optimization (weighted Tchebycheff, §3.4).
    Nash, J. (1950). The Bargaining Problem. Econometrica 18(2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

Array = Any


class AggregationParams(NamedTuple):
    """Static parameters of one contract's aggregation (plain Python floats, per stakeholder).

    Attributes:
        rule: One of weighted_sum, utilitarian, nash_bargaining, max_min, lexicographic.
        weights: Normalised weights ``w_i``.
        disagreement: Nash disagreement points ``d_i``.
        ideal: Ideal points ``z_i`` (upper bounds of the utilities) for max_min.
        lex_lo: Lower bounds ``lo_i`` of the utilities (lexicographic scalar offsets).
        lex_coef: Lexicographic ε-coefficients ``c_i`` (0 for never-decisive stakeholders).
        floor: Floor reward for vetoed rows and rows outside the bargaining set.
    """

    rule: str
    weights: tuple[float, ...]
    disagreement: tuple[float, ...]
    ideal: tuple[float, ...]
    lex_lo: tuple[float, ...]
    lex_coef: tuple[float, ...]
    floor: float


def _xp(u: Array) -> Any:
    return np if isinstance(u, np.ndarray) else jnp


def _f32(value: float) -> np.float32:
    return np.float32(value)


def weighted_sum(u: Array, weights: Sequence[float]) -> Array:
    """``R = sum_i w_i u_i``. ``u``: [rows, k] float32 -> [rows] float32."""
    total = u[..., 0] * _f32(weights[0])
    for i in range(1, u.shape[-1]):
        total = total + u[..., i] * _f32(weights[i])
    return total


def utilitarian(u: Array) -> Array:
    """``R = sum_i u_i``. ``u``: [rows, k] -> [rows]."""
    total = u[..., 0]
    for i in range(1, u.shape[-1]):
        total = total + u[..., i]
    return total


def nash_bargaining(
    u: Array, weights: Sequence[float], disagreement: Sequence[float], floor: float
) -> tuple[Array, Array]:
    """Weighted Nash product in log form.

    ``R = sum_i w_i log(u_i - d_i)`` where every ``u_i > d_i``; other rows (including NaN
    utilities) get ``floor`` and are flagged as outside the bargaining set.

    Args:
        u: [rows, k] float32 utilities.
        weights: Normalised weights.
        disagreement: Disagreement points ``d_i``.
        floor: Reward for rows outside the bargaining set.

    Returns:
        ``(reward [rows] float32, outside [rows] bool)``.
    """
    xp = _xp(u)
    gaps = [u[..., i] - _f32(disagreement[i]) for i in range(u.shape[-1])]
    inside = gaps[0] > 0
    for gap in gaps[1:]:
        inside = inside & (gap > 0)
    total = None
    for i, gap in enumerate(gaps):
        term = xp.log(xp.where(inside, gap, _f32(1.0))) * _f32(weights[i])
        total = term if total is None else total + term
    return xp.where(inside, total, _f32(floor)), ~inside


def max_min(u: Array, weights: Sequence[float], ideal: Sequence[float]) -> Array:
    """Weighted Tchebycheff: ``R = -max_i w_i (z_i - u_i)``. ``u``: [rows, k] -> [rows]."""
    xp = _xp(u)
    worst = None
    for i in range(u.shape[-1]):
        regret = (_f32(ideal[i]) - u[..., i]) * _f32(weights[i])
        worst = regret if worst is None else xp.maximum(worst, regret)
    return -worst


def lexicographic(u: Array, lex_lo: Sequence[float], lex_coef: Sequence[float]) -> Array:
    """ε-weighted lexicographic scalar ``R = sum_i c_i (u_i - lo_i)`` (see module docstring)."""
    total = None
    for i in range(u.shape[-1]):
        if lex_coef[i] == 0.0:
            continue
        term = (u[..., i] - _f32(lex_lo[i])) * _f32(lex_coef[i])
        total = term if total is None else total + term
    if total is None:
        return u[..., 0] * _f32(0.0)
    return total


def aggregate(u: Array, params: AggregationParams) -> tuple[Array, Array]:
    """Apply ``params.rule`` to ``u`` [rows, k]: ``(reward [rows], outside_bargaining [rows])``."""
    xp = _xp(u)
    none = xp.zeros(u.shape[:-1], dtype=bool)
    if params.rule == "weighted_sum":
        return weighted_sum(u, params.weights), none
    if params.rule == "utilitarian":
        return utilitarian(u), none
    if params.rule == "nash_bargaining":
        return nash_bargaining(u, params.weights, params.disagreement, params.floor)
    if params.rule == "max_min":
        return max_min(u, params.weights, params.ideal), none
    if params.rule == "lexicographic":
        return lexicographic(u, params.lex_lo, params.lex_coef), none
    raise ValueError(f"unknown aggregation rule {params.rule!r}")


def lex_coefficients(
    lo: Sequence[float], hi: Sequence[float], order: Sequence[int], tol: float
) -> tuple[float, ...]:
    """ε-coefficients ``c_i`` (indexed by stakeholder) for the lexicographic scalar.

    Args:
        lo: Lower bounds of the utilities (finite).
        hi: Upper bounds of the utilities (finite).
        order: Stakeholder indices, highest priority first.
        tol: Comparator tolerance (>= 0).

    Returns:
        One coefficient per stakeholder; 0 for stakeholders that can never be decisive.
    """
    coef = [0.0] * len(lo)
    prev_coef, prev_step = None, 0.0
    for i in order:
        width = hi[i] - lo[i]
        if width <= tol or width <= 0:
            continue
        current = 1.0 if prev_coef is None else prev_coef * prev_step / (2.0 * width)
        coef[i] = current
        prev_coef, prev_step = current, (tol if tol > 0 else width / 1024.0)
    return tuple(coef)


def lex_compare(u_a: Array, u_b: Array, order: Sequence[int], tol: float) -> Array:
    """Exact lexicographic comparator with tolerance.

    Args:
        u_a: [..., k] utilities of the first candidate(s).
        u_b: [..., k] utilities of the second candidate(s).
        order: Stakeholder indices, highest priority first.
        tol: Differences with ``|diff| <= tol`` fall through to the next stakeholder.

    Returns:
        int32 array [...]: 1 when ``u_a`` ranks above ``u_b``, -1 below, 0 tied throughout.
    """
    xp = _xp(u_a) if isinstance(u_b, np.ndarray) else jnp
    idx = np.asarray(order, dtype=np.int32)
    diff = xp.asarray(u_a)[..., idx] - xp.asarray(u_b)[..., idx]
    decisive = xp.abs(diff) > tol
    first = xp.argmax(decisive, axis=-1)
    picked = xp.take_along_axis(diff, first[..., None], axis=-1)[..., 0]
    return xp.where(decisive.any(axis=-1), xp.sign(picked), 0).astype(xp.int32)


def lex_sort_key(order: Sequence[int], tol: float) -> Callable[[Sequence[float]], Any]:
    """A ``sorted(..., key=...)`` key ranking utility vectors by ``lex_compare`` (ascending).

    The comparator is exact; on utilities quantised by the tolerance it is a total order.
    """

    def cmp(a: Sequence[float], b: Sequence[float]) -> int:
        return int(lex_compare(np.asarray(a), np.asarray(b), order, tol))

    return functools.cmp_to_key(cmp)


def lex_argsort(u: np.ndarray, order: Sequence[int], tol: float) -> np.ndarray:
    """Row indices of ``u`` [rows, k] from best to worst under ``lex_compare`` (stable)."""
    key = lex_sort_key(order, tol)
    ranked = sorted(range(len(u)), key=lambda r: key(u[r]), reverse=True)
    return np.asarray(ranked, dtype=np.int64)
