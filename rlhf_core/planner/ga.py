"""A plain random-key genetic algorithm: the ablation baseline for the QIEA (same budget).

Binary tournament selection, one-point crossover, uniform-reset mutation, (mu + lambda)
elitist replacement. Individuals are re-encoded from their justified schedules (as the QIEA
attractors are), so the comparison isolates the search operators.

References:
    Hartmann, S. (1998). A competitive genetic algorithm for resource-constrained project
    scheduling. Naval Research Logistics 45(7), 733-750.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlhf_core.planner.evaluate import DecodeName, SGSName, evaluate_population, evaluation_cost
from rlhf_core.planner.instance import Instance


class GAParams(NamedTuple):
    """Static hyper-parameters of the GA."""

    pop_size: int = 32
    mutation_rate: float = 0.05
    sgs: SGSName = "serial"
    fbi: bool = True
    decode: DecodeName = "backward"


class GAState(NamedTuple):
    """Population keys ``float32[P, N]``, makespans ``int32[P]``, best schedule and counters."""

    keys: jnp.ndarray
    ms: jnp.ndarray
    best_starts: jnp.ndarray
    best_ms: jnp.ndarray
    schedules: jnp.ndarray


def init_ga(inst: Instance, key: jnp.ndarray, params: GAParams) -> GAState:
    """A random initial population, evaluated (counts as one generation)."""
    prio = jax.random.uniform(key, (params.pop_size, inst.dur.shape[0]))
    starts, ms, keys = evaluate_population(inst, prio, params.sgs, params.fbi, params.decode)
    i = jnp.argmin(ms)
    per = evaluation_cost(params.pop_size, params.fbi, params.decode)
    return GAState(keys, ms, starts[i], ms[i], jnp.int32(per))


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
        state.schedules + per,
    )


def run_ga(
    inst: Instance, state: GAState, key: jnp.ndarray, params: GAParams, generations: int
) -> GAState:
    """Run ``generations`` GA generations (``lax.scan``; jit the caller)."""
    def body(s: GAState, k: jnp.ndarray) -> tuple[GAState, None]:
        return _generation(inst, s, k, params), None

    return jax.lax.scan(body, state, jax.random.split(key, generations))[0] if generations else state
