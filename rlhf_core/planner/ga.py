"""A plain random-key genetic algorithm: the ablation baseline for the QIEA and BPGA.

Binary tournament selection, one-point crossover, uniform-reset mutation, (mu + lambda)
elitist replacement. Individuals are re-encoded from their justified schedules (as the QIEA
attractors are), so a comparison at the same schedule budget isolates the search operators.

Interface (:mod:`rlhf_core.planner.algorithm`): :func:`init` evaluates a random population (one
generation's schedules), each :func:`step` is one generation, :func:`best` reads the result.

References:
    Hartmann, S. (1998). A competitive genetic algorithm for resource-constrained project
    scheduling. Naval Research Logistics 45(7), 733-750.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlhf_core.planner.algorithm import Algorithm, SearchResult
from rlhf_core.planner.evaluate import evaluate_population
from rlhf_core.planner.instance import Instance
from rlhf_core.planner.params import GAParams, evaluation_cost


class GAState(NamedTuple):
    """Population keys ``float32[P, N]``, makespans ``int32[P]``, best schedule and counters.

    Generation ``g`` after ``init`` draws from ``fold_in(key, g)``.
    """

    keys: jnp.ndarray
    ms: jnp.ndarray
    best_starts: jnp.ndarray
    best_ms: jnp.ndarray
    schedules: jnp.ndarray
    key: jnp.ndarray
    generation: jnp.ndarray


def init(inst: Instance, key: jnp.ndarray, params: GAParams, budget: int) -> GAState:
    """A random initial population from ``fold_in(key, 0)``, evaluated (one generation's cost).

    Raises:
        PlannerError: the budget does not cover the initial population.
    """
    params.generations(budget)
    prio = jax.random.uniform(jax.random.fold_in(key, 0), (params.pop_size, inst.dur.shape[0]))
    starts, ms, keys = evaluate_population(inst, prio, params.sgs, params.fbi, params.decode)
    i = jnp.argmin(ms)
    per = evaluation_cost(params.pop_size, params.fbi, params.decode)
    return GAState(keys, ms, starts[i], ms[i], jnp.int32(per), jax.random.fold_in(key, 1), jnp.int32(0))


def step(inst: Instance, state: GAState, params: GAParams) -> GAState:
    """One generation: selection, crossover, mutation, evaluation, elitist replacement."""
    new = _generation(inst, state, jax.random.fold_in(state.key, state.generation), params)
    return new._replace(generation=state.generation + 1)


def best(state: GAState) -> SearchResult:
    """The best schedule found and the schedules generated."""
    return SearchResult(state.best_starts, state.best_ms, state.schedules)


def _generation(inst: Instance, state: GAState, key: jnp.ndarray, params: GAParams) -> GAState:
    p, n = state.keys.shape
    k_sel, k_cut, k_mut, k_val = jax.random.split(key, 4)
    cand = jax.random.randint(k_sel, (2, p, 2), 0, p)
    pick = jnp.where(state.ms[cand[..., 0]] <= state.ms[cand[..., 1]], cand[..., 0], cand[..., 1])
    mom, dad = state.keys[pick[0]], state.keys[pick[1]]
    cut = jax.random.randint(k_cut, (p, 1), 1, n)
    child = jnp.where(jnp.arange(n)[None, :] < cut, mom, dad)
    mutate = jax.random.uniform(k_mut, child.shape) < params.mutation_rate
    child = jnp.where(mutate, jax.random.uniform(k_val, child.shape), child)
    starts, ms, keys = evaluate_population(inst, child, params.sgs, params.fbi, params.decode)
    all_keys = jnp.concatenate([state.keys, keys])
    all_ms = jnp.concatenate([state.ms, ms])
    keep = jnp.argsort(all_ms, stable=True)[:p]
    i = jnp.argmin(ms)
    better = ms[i] < state.best_ms
    per = evaluation_cost(params.pop_size, params.fbi, params.decode)
    return GAState(
        all_keys[keep], all_ms[keep],
        jnp.where(better, starts[i], state.best_starts),
        jnp.where(better, ms[i], state.best_ms),
        state.schedules + per, state.key, state.generation,
    )


ALGORITHM: Algorithm[GAParams, GAState] = Algorithm("ga", init, step, best)
