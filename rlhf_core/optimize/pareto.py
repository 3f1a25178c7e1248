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


def batch_mean_utilities(weights: jax.Array, utils: jax.Array, allowed: jax.Array) -> jax.Array:
    """:func:`mean_utilities` for a batch of weights ``[B, S] -> [B, S]``.

    The chosen candidates become a one-hot ``[B, P, C]`` tensor, and the means one contraction
    with ``utils`` (a matmul, instead of a per-weight gather).
    """
    has_any = jnp.any(allowed, axis=1)
    score = jnp.where(allowed[None], jnp.einsum("pcs,bs->bpc", utils, weights), -jnp.inf)
    pick = jax.nn.one_hot(jnp.argmax(score, axis=2), utils.shape[1], dtype=utils.dtype)
    pick = pick * has_any[None, :, None].astype(utils.dtype)
    n = jnp.maximum(jnp.sum(has_any), 1)
    return jnp.einsum("bpc,pcs->bs", pick, utils) / n


def make_pareto_evaluator(
    chunk: int = 32,
) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """Jitted ``evaluate(weights [W, S], utils [P, C, S], allowed [P, C]) -> [W, S]``.

    Args:
        chunk: Weight vectors evaluated together; bounds peak memory at ``chunk × P × C``.
    """

    def evaluate(weights: jax.Array, utils: jax.Array, allowed: jax.Array) -> jax.Array:
        n_w, n_s = weights.shape
        n_chunks = -(-n_w // chunk)
        padded = jnp.zeros((n_chunks * chunk, n_s), weights.dtype).at[:n_w].set(weights)
        out = jax.lax.map(lambda w: batch_mean_utilities(w, utils, allowed),
                          padded.reshape(n_chunks, chunk, n_s))
        return out.reshape(n_chunks * chunk, n_s)[:n_w]

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
