"""Simulated annealing (maximisation) with Gaussian proposals and geometric cooling.

Independent chains run in parallel (``vmap``); each step proposes ``x + step·ε``, accepts with
probability ``min(1, exp((f' − f)/T))``, and cools ``T`` geometrically from ``t_start`` to
``t_end``. The proposal scale shrinks with the temperature (``step ∝ √(T / t_start)``) so late
steps refine. The best point over all chains and steps is returned.

References:
    Kirkpatrick, Gelatt & Vecchi, "Optimization by Simulated Annealing", Science 1983.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlhf_core.optimize.es import SearchResult


class _Chain(NamedTuple):
    x: jax.Array
    f: jax.Array
    best_x: jax.Array
    best_f: jax.Array


def make_annealing_search(
    objective: Callable[[jax.Array], jax.Array],
    steps: int = 2000,
    chains: int = 8,
    t_start: float = 1.0,
    t_end: float = 1e-3,
    step_size: float = 0.5,
) -> Callable[[jax.Array, jax.Array], SearchResult]:
    """Jitted ``search(key, x0) -> SearchResult`` (all chains start at ``x0``)."""
    ratio = (t_end / t_start) ** (1.0 / max(steps - 1, 1))

    def search(key: jax.Array, x0: jax.Array) -> SearchResult:
        x0 = jnp.asarray(x0, jnp.float32)
        f0 = objective(x0)
        init = jax.tree.map(lambda a: jnp.broadcast_to(a, (chains, *a.shape)), _Chain(x0, f0, x0, f0))

        def one_chain(c: _Chain, k: jax.Array, temp: jax.Array) -> _Chain:
            k1, k2 = jax.random.split(k)
            scale = step_size * jnp.sqrt(temp / t_start)
            prop = c.x + scale * jax.random.normal(k1, c.x.shape)
            fp = objective(prop)
            fp = jnp.where(jnp.isfinite(fp), fp, -jnp.inf)
            accept = jnp.log(jax.random.uniform(k2)) < (fp - c.f) / temp
            x = jnp.where(accept, prop, c.x)
            f = jnp.where(accept, fp, c.f)
            better = f > c.best_f
            return _Chain(x, f, jnp.where(better, x, c.best_x), jnp.where(better, f, c.best_f))

        def step(c: _Chain, inp: tuple[jax.Array, jax.Array]) -> tuple[_Chain, jax.Array]:
            k, i = inp
            temp = t_start * ratio**i
            c = jax.vmap(one_chain, in_axes=(0, 0, None))(c, jax.random.split(k, chains), temp)
            return c, jnp.max(c.best_f)

        keys = jax.random.split(key, steps)
        out, history = jax.lax.scan(step, init, (keys, jnp.arange(steps, dtype=jnp.float32)))
        top = jnp.argmax(out.best_f)
        return SearchResult(out.best_x[top], out.best_f[top], history)

    return jax.jit(search)
