"""Non-differentiable rules over stakeholder weights, as objectives for ES / annealing / hybrid.

A point ``θ ∈ R^S`` maps to weights ``w = softmax(θ)`` on the simplex; each prompt picks its best
allowed candidate under ``w`` and the rule scores the resulting mean utilities ``u(w)``. The map
``w → u(w)`` is piecewise constant (an argmax), so these objectives have zero gradient almost
everywhere: gradient methods stall on them, population methods do not.

Utilities are normalised per stakeholder to ``(u − d) / (ideal − d)`` with ``d`` the
random-choice (no-deal) utility, so stakeholders on different scales compare fairly.

* ``max_min``: the worst-off stakeholder's normalised utility (egalitarian rule).
* ``lexicographic``: priority order with a tolerance: ``Σ_k ε^k · ũ_{s_k}``, ``ε = tol``;
  a later stakeholder only matters among points within ``tol`` on the earlier ones.
* ``hard_constraint``: maximise one stakeholder's utility subject to floors on the others;
  infeasible points score ``−1 − total violation`` (below every feasible point).
* ``soft_max_min``: a differentiable surrogate of ``max_min`` for hybrid refinement (soft
  best-of-n selection at temperature ``tau_select``, soft-min at ``tau_min``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from rlhf_core.optimize.pareto import ideal_utilities, mean_utilities, random_choice_utilities

Objective = Callable[[jax.Array], jax.Array]


def _normaliser(utils: jax.Array, allowed: jax.Array) -> Callable[[jax.Array], jax.Array]:
    d = random_choice_utilities(utils, allowed)
    span = jnp.maximum(ideal_utilities(utils, allowed) - d, 1e-12)
    return lambda u: (u - d) / span


def max_min(utils: jax.Array, allowed: jax.Array) -> Objective:
    """``θ ↦ min_s ũ_s(softmax θ)``."""
    norm = _normaliser(utils, allowed)
    return lambda theta: jnp.min(norm(mean_utilities(jax.nn.softmax(theta), utils, allowed)))


def lexicographic(
    utils: jax.Array, allowed: jax.Array, order: Sequence[int], tol: float = 1e-3
) -> Objective:
    """``θ ↦ Σ_k tol^k · ũ_{order[k]}(softmax θ)``."""
    norm = _normaliser(utils, allowed)
    scale = jnp.asarray([tol**k for k in range(len(order))], jnp.float32)
    idx = jnp.asarray(list(order), jnp.int32)
    return lambda theta: jnp.sum(
        scale * norm(mean_utilities(jax.nn.softmax(theta), utils, allowed))[idx]
    )


def hard_constraint(
    utils: jax.Array, allowed: jax.Array, target: int, floors: jax.Array
) -> Objective:
    """Maximise ``u_target`` subject to ``u_s ≥ floors[s]`` (raw utilities; NaN floor = none)."""
    floors = jnp.asarray(floors, jnp.float32)

    def objective(theta: jax.Array) -> jax.Array:
        u = mean_utilities(jax.nn.softmax(theta), utils, allowed)
        violation = jnp.sum(jnp.where(jnp.isnan(floors), 0.0, jnp.maximum(floors - u, 0.0)))
        return jnp.where(violation > 0, -1.0 - violation, u[target])

    return objective


def soft_max_min(
    utils: jax.Array, allowed: jax.Array, tau_select: float = 0.05, tau_min: float = 0.02
) -> Objective:
    """Differentiable surrogate of :func:`max_min`."""
    norm = _normaliser(utils, allowed)
    has_any = jnp.any(allowed, axis=1)
    n = jnp.maximum(jnp.sum(has_any), 1)

    def objective(theta: jax.Array) -> jax.Array:
        w = jax.nn.softmax(theta)
        score = jnp.where(allowed, utils @ w, -jnp.inf)
        p = jax.nn.softmax(score / tau_select, axis=1)
        p = jnp.where(has_any[:, None], p, 0.0)
        u = jnp.sum(p[:, :, None] * jnp.where(allowed[:, :, None], utils, 0.0), axis=(0, 1)) / n
        return -tau_min * jax.nn.logsumexp(-norm(u) / tau_min)

    return objective
