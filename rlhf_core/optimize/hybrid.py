"""Hybrid search: an evolution strategy finds the basin, gradient ascent refines inside it.

The gradient stage maximises a differentiable surrogate (for a max-min rule, the soft-min with
soft best-of-n selection; for a smooth objective, the objective itself) with optax Adam, and the
refined point is kept only if it improves the exact objective, so the hybrid is never worse than
its ES stage.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from rlhf_core.optimize.es import SearchResult, make_es_search


def make_hybrid_search(
    objective: Callable[[jax.Array], jax.Array],
    surrogate: Callable[[jax.Array], jax.Array] | None,
    dim: int,
    popsize: int = 32,
    generations: int = 100,
    sigma: float = 0.5,
    refine_steps: int = 300,
    learning_rate: float = 0.01,
) -> Callable[[jax.Array, jax.Array], SearchResult]:
    """Jitted ``search(key, x0) -> SearchResult``: SNES, then Adam on ``surrogate``.

    Args:
        objective: Exact objective (maximised), possibly non-differentiable.
        surrogate: Differentiable stand-in for the refinement (``None``: use ``objective``).
        dim: Search dimension.
        popsize: ES population.
        generations: ES generations.
        sigma: Initial ES scale.
        refine_steps: Adam steps.
        learning_rate: Adam step size.
    """
    es = make_es_search(objective, dim, popsize, generations, sigma)
    smooth = surrogate or objective
    opt = optax.adam(learning_rate)

    def search(key: jax.Array, x0: jax.Array) -> SearchResult:
        coarse = es(key, x0)

        def step(carry: tuple, _: None) -> tuple[tuple, jax.Array]:
            x, state, best_x, best_f = carry
            grad = jax.grad(lambda v: -smooth(v))(x)
            updates, state = opt.update(grad, state)
            x = optax.apply_updates(x, updates)
            f = objective(x)
            better = f > best_f
            return (x, state, jnp.where(better, x, best_x), jnp.where(better, f, best_f)), best_f

        x = coarse.best_x
        init = (x, opt.init(x), x, coarse.best_fitness)
        (_, _, best_x, best_f), hist = jax.lax.scan(step, init, None, length=refine_steps)
        return SearchResult(best_x, best_f, jnp.concatenate([coarse.history, hist]))

    return jax.jit(search)
