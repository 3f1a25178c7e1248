"""Separable Natural Evolution Strategy (SNES), evosax-style ``init / ask / tell`` (maximisation).

A diagonal Gaussian search distribution; rank-based fitness shaping makes it invariant to any
monotone transform of the objective, so it works on piecewise-constant objectives (max-min of
best-of-n utilities, lexicographic rules, hard constraints) where gradients are zero almost
everywhere.

References:
    Schaul, Glasmachers & Schmidhuber, "High Dimensions and Heavy Tails for Natural Evolution
    Strategies", GECCO 2011. Lange, "evosax: JAX-based Evolution Strategies", 2022.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp


class SNESState(NamedTuple):
    """Search distribution and the best member seen."""

    mean: jax.Array  # [D]
    sigma: jax.Array  # [D]
    best_x: jax.Array  # [D]
    best_fitness: jax.Array  # scalar
    generation: jax.Array  # int32


@dataclass(frozen=True)
class SNES:
    """SNES with ``popsize`` members in ``dim`` dimensions.

    Args:
        popsize: Population size (even numbers use mirrored sampling).
        dim: Search dimension.
        lr_mean: Step size on the mean.
        lr_sigma: Step size on log sigma (default ``(3 + log D) / (5 √D)``).
    """

    popsize: int
    dim: int
    lr_mean: float = 1.0
    lr_sigma: float | None = None

    def _utilities(self) -> jax.Array:
        n = self.popsize
        u = jnp.maximum(0.0, jnp.log(n / 2 + 1) - jnp.log(jnp.arange(1, n + 1)))
        return u / jnp.sum(u) - 1.0 / n

    def init(self, mean: jax.Array, sigma: float | jax.Array) -> SNESState:
        """Initial state around ``mean`` with scale ``sigma``."""
        mean = jnp.asarray(mean, jnp.float32)
        return SNESState(mean, jnp.broadcast_to(jnp.asarray(sigma, jnp.float32), mean.shape),
                         mean, jnp.float32(-jnp.inf), jnp.int32(0))

    def ask(self, key: jax.Array, state: SNESState) -> jax.Array:
        """Population ``[popsize, dim]`` (mirrored noise)."""
        half = jax.random.normal(key, ((self.popsize + 1) // 2, self.dim))
        z = jnp.concatenate([half, -half])[: self.popsize]
        return state.mean + state.sigma * z

    def tell(self, x: jax.Array, fitness: jax.Array, state: SNESState) -> SNESState:
        """Natural-gradient update from the population's fitness (higher is better)."""
        lr_sigma = self.lr_sigma or (3 + jnp.log(self.dim)) / (5 * jnp.sqrt(self.dim))
        fitness = jnp.where(jnp.isfinite(fitness), fitness, -jnp.inf)
        order = jnp.argsort(-fitness)
        z = (x - state.mean) / state.sigma
        u = self._utilities()[:, None]
        zs = z[order]
        mean = state.mean + self.lr_mean * state.sigma * jnp.sum(u * zs, axis=0)
        sigma = state.sigma * jnp.exp(0.5 * lr_sigma * jnp.sum(u * (zs**2 - 1.0), axis=0))
        top = order[0]
        better = fitness[top] > state.best_fitness
        return SNESState(
            mean=mean,
            sigma=sigma,
            best_x=jnp.where(better, x[top], state.best_x),
            best_fitness=jnp.where(better, fitness[top], state.best_fitness),
            generation=state.generation + 1,
        )


class SearchResult(NamedTuple):
    """Best point, its fitness and the best-so-far fitness per generation/step."""

    best_x: jax.Array
    best_fitness: jax.Array
    history: jax.Array


def make_es_search(
    objective: Callable[[jax.Array], jax.Array],
    dim: int,
    popsize: int = 32,
    generations: int = 200,
    sigma: float = 0.5,
) -> Callable[[jax.Array, jax.Array], SearchResult]:
    """Jitted ``search(key, x0) -> SearchResult`` maximising ``objective`` with SNES.

    The population is evaluated with ``vmap`` and generations run in one ``lax.scan``.
    """
    strategy = SNES(popsize=popsize, dim=dim)
    fitness_of = jax.vmap(objective)

    def search(key: jax.Array, x0: jax.Array) -> SearchResult:
        def step(state: SNESState, k: jax.Array) -> tuple[SNESState, jax.Array]:
            x = strategy.ask(k, state)
            state = strategy.tell(x, fitness_of(x), state)
            return state, state.best_fitness

        state, history = jax.lax.scan(step, strategy.init(x0, sigma), jax.random.split(key, generations))
        # The final mean is often better than any sampled member on smooth problems.
        f_mean = objective(state.mean)
        better = f_mean > state.best_fitness
        return SearchResult(jnp.where(better, state.mean, state.best_x),
                            jnp.maximum(f_mean, state.best_fitness), history)

    return jax.jit(search)
