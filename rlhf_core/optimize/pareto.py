"""Scalarised best-of-n selection over the stakeholder weight simplex, many weights at once.

For a weight vector ``w`` (on the simplex) every prompt picks its best allowed candidate under
``U[p, c, :]·w`` (first index on ties) and the result is the mean utility per stakeholder over the
prompts that have an allowed candidate. ``make_pareto_evaluator`` returns one jitted program that
evaluates thousands of weight vectors (``lax.map`` over chunks, ``vmap`` inside a chunk, so memory
stays ``chunk × prompts × candidates``).

Shapes: ``utils`` float32 ``[P, C, S]`` (padded), ``allowed`` bool ``[P, C]`` (real candidate and not
vetoed), ``weights`` float32 ``[W, S]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def choose(weight: jax.Array, utils: jax.Array, allowed: jax.Array) -> jax.Array:
    """Index of each prompt's best allowed candidate under ``weight``: int32 ``[P]``."""
    score = jnp.where(allowed, utils @ weight, -jnp.inf)
    return jnp.argmax(score, axis=1).astype(jnp.int32)


def mean_utilities(weight: jax.Array, utils: jax.Array, allowed: jax.Array) -> jax.Array:
    """Mean chosen utility per stakeholder ``[S]`` over prompts with an allowed candidate."""
    has_any = jnp.any(allowed, axis=1)
    c = choose(weight, utils, allowed)
    picked = jnp.take_along_axis(utils, c[:, None, None], axis=1)[:, 0, :]
    n = jnp.maximum(jnp.sum(has_any), 1)
    return jnp.sum(jnp.where(has_any[:, None], picked, 0.0), axis=0) / n


def make_pareto_evaluator(
    chunk: int = 32,
) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """Jitted ``evaluate(weights [W, S], utils [P, C, S], allowed [P, C]) -> [W, S]``.

    Args:
        chunk: Weight vectors evaluated together (vmapped); bounds peak memory.
    """

    def evaluate(weights: jax.Array, utils: jax.Array, allowed: jax.Array) -> jax.Array:
        return jax.lax.map(lambda w: mean_utilities(w, utils, allowed), weights, batch_size=chunk)

    return jax.jit(evaluate)


def ideal_utilities(utils: jax.Array, allowed: jax.Array) -> jax.Array:
    """Per stakeholder, the mean over prompts of its best allowed candidate ``[S]`` (the utopia)."""
    has_any = jnp.any(allowed, axis=1)
    best = jnp.max(jnp.where(allowed[:, :, None], utils, -jnp.inf), axis=1)
    n = jnp.maximum(jnp.sum(has_any), 1)
    return jnp.sum(jnp.where(has_any[:, None], best, 0.0), axis=0) / n


def random_choice_utilities(utils: jax.Array, allowed: jax.Array) -> jax.Array:
    """Expected utility ``[S]`` of a uniformly random allowed candidate (the no-deal outcome)."""
    has_any = jnp.any(allowed, axis=1)
    k = jnp.maximum(jnp.sum(allowed, axis=1), 1)[:, None]
    avg = jnp.sum(jnp.where(allowed[:, :, None], utils, 0.0), axis=1) / k
    n = jnp.maximum(jnp.sum(has_any), 1)
    return jnp.sum(jnp.where(has_any[:, None], avg, 0.0), axis=0) / n


def simplex_lattice(n_objectives: int, divisions: int) -> np.ndarray:
    """All weight vectors with coordinates ``k / divisions`` summing to 1 (float32 ``[W, S]``).

    ``W = C(divisions + S − 1, S − 1)``: 1,326 vectors for 3 stakeholders and 50 divisions.
    """
    rows = [
        c
        for c in itertools.product(range(divisions + 1), repeat=n_objectives - 1)
        if sum(c) <= divisions
    ]
    grid = np.array([[*c, divisions - sum(c)] for c in rows], np.float32)
    return grid / divisions


def simplex_random(key: jax.Array, n: int, n_objectives: int) -> jax.Array:
    """``n`` weight vectors uniform on the simplex (Dirichlet(1)), float32 ``[n, S]``.

    Normalised unit exponentials are Dirichlet(1) and compile far faster than gamma sampling.
    """
    e = jax.random.exponential(key, (n, n_objectives), jnp.float32)
    return e / jnp.sum(e, axis=1, keepdims=True)
