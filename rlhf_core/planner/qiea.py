"""Quantum-inspired evolutionary algorithm (QIEA) for the RCPSP, on islands.

Each individual is a Q-bit angle array ``theta[N, B]``: activity ``j``'s priority (random key) is
the ``B``-bit number observed bit by bit with ``P(1) = sin(theta)^2``. Every individual keeps an
attractor (the best solution it has seen, re-encoded from the justified schedule), and a rotation
gate turns each disagreeing Q-bit toward it, by an angle that shrinks over the run (exploration
first, then intensification) and grows with the makespan gap (adaptive rotation). The H-epsilon
gate clamps angles to ``[eps, pi/2 - eps]`` so no bit ever becomes certain, and Gaussian mutation
perturbs them. Every ``sync_interval`` generations the island's best replaces every attractor;
every ``migration_interval`` generations each island's best moves to the next island (ring).

Three additions to the textbook algorithm, each for a reason:

* Backward decoding: priorities are read as a right-to-left order, so an individual costs two
  schedules (a backward SGS, then the forward pass that left-justifies it) instead of three.
* A parallel share: the last ``parallel_share`` of each island's children (never a window move)
  build their right-justified schedule with the parallel SGS. Non-delay schedules are a smaller
  space that often holds the best schedules of tightly constrained projects; each child keeps its
  slot, so its attractor and Q-bits learn for that decoder.
* Window moves, a decomposition-style local search: the first ``window_moves`` children copy
  their attractor's order and shuffle one window of ``window_frac * N`` consecutive positions, so
  the window is re-solved with the rest of the schedule fixed around it.

Interface (:mod:`rlhf_core.planner.algorithm`): :func:`init`, :func:`step` and :func:`best` work
on all islands at once (a leading island axis). :func:`init_island`, :func:`run_island` and
:func:`migrate` work on one island, for callers that run islands on separate workers
(:mod:`rlhf_core.planner.islands`); both paths find the same schedule. How the defaults were
picked and what each addition measured: ``docs/planner-tuning.md``.

References:
    Han, K.-H. & Kim, J.-H. (2002). Quantum-inspired evolutionary algorithm for a class of
    combinatorial optimization. IEEE Trans. Evolutionary Computation 6(6), 580-593.
    Han, K.-H. & Kim, J.-H. (2004). Quantum-inspired evolutionary algorithms with a new
    termination criterion, H-epsilon gate, and two-phase scheme. IEEE TEC 8(2), 156-169.
    Debels, D. & Vanhoucke, M. (2007). A decomposition-based genetic algorithm for the
    resource-constrained project-scheduling problem. Operations Research 55(3), 457-469.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlhf_core.planner.algorithm import Algorithm, SearchResult
from rlhf_core.planner.evaluate import evaluate_population
from rlhf_core.planner.instance import Instance
from rlhf_core.planner.params import QIEAParams, evaluation_cost

NO_SOLUTION = 2**30


class IslandState(NamedTuple):
    """The state of one island (a leading axis for several).

    Attributes:
        theta: ``float32[P, N, B]`` Q-bit angles.
        attr_bits: ``bool[P, N, B]`` each individual's attractor, as bits.
        attr_ms: ``int32[P]`` attractor makespans.
        best_starts: ``int32[N]`` the island's best schedule.
        best_ms: ``int32[]`` its makespan.
        generation: ``int32[]`` generations done (for the rotation schedule and the keys).
        schedules: ``int32[]`` schedules generated so far.
        key: ``uint32[2]`` the island's PRNG key; generation ``g`` uses ``fold_in(key, g)``.
        total: ``int32[]`` generations of the whole run (drives the rotation-angle schedule).
    """

    theta: jnp.ndarray
    attr_bits: jnp.ndarray
    attr_ms: jnp.ndarray
    best_starts: jnp.ndarray
    best_ms: jnp.ndarray
    generation: jnp.ndarray
    schedules: jnp.ndarray
    key: jnp.ndarray
    total: jnp.ndarray


def _weights(bits: int) -> jnp.ndarray:
    return 2.0 ** jnp.arange(bits - 1, -1, -1, dtype=jnp.float32)


def _encode(keys: jnp.ndarray, bits: int) -> jnp.ndarray:
    levels = jnp.floor(keys * (2**bits)).astype(jnp.int32)
    shifts = jnp.arange(bits - 1, -1, -1, dtype=jnp.int32)
    return ((levels[:, None] >> shifts[None, :]) & 1).astype(bool)


def _observe(theta: jnp.ndarray, key: jnp.ndarray, bits: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    k1, k2 = jax.random.split(key)
    obs = jax.random.uniform(k1, theta.shape) < jnp.sin(theta) ** 2
    tie = jax.random.uniform(k2, theta.shape[:-1])
    return obs, (obs.astype(jnp.float32) * _weights(bits)).sum(-1) + tie


def init_island(inst: Instance, key: jnp.ndarray, params: QIEAParams, total: int) -> IslandState:
    """A blank island: uniform Q-bits (``theta = pi/4``) and no solution yet.

    The first generation observes and evaluates it like any other (no schedule is built here).

    Args:
        inst: A single padded instance (only its shape is used).
        key: The island's PRNG key.
        params: Hyper-parameters.
        total: Generations of the whole run.

    Returns:
        The island state before its first generation.
    """
    n = inst.dur.shape[0]
    shape = (params.pop_size, n, params.bits)
    return IslandState(
        theta=jnp.full(shape, jnp.pi / 4, jnp.float32),
        attr_bits=jnp.zeros(shape, bool),
        attr_ms=jnp.full((params.pop_size,), NO_SOLUTION, jnp.int32),
        best_starts=jnp.zeros(n, jnp.int32),
        best_ms=jnp.int32(NO_SOLUTION),
        generation=jnp.int32(0),
        schedules=jnp.int32(0),
        key=jnp.asarray(key),
        total=jnp.int32(total),
    )


def _window_moves(
    state: IslandState, obs: jnp.ndarray, prio: jnp.ndarray, key: jnp.ndarray, params: QIEAParams
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Replace the first children by their attractor with one window of its order shuffled.

    A child keeps its attractor's levels outside the window; inside, the window's activities get
    fresh uniform priorities spanning exactly the window's level range, so they stay contiguous
    in the order and only their order among themselves changes. Before any attractor exists
    (the first generation) the observed children are kept.
    """
    m = params.window_moves
    levels = (state.attr_bits[:m].astype(jnp.float32) * _weights(params.bits)).sum(-1)
    n = levels.shape[1]
    k1, k2 = jax.random.split(key)
    w = min(n, max(2, round(params.window_frac * n)))
    pos = jnp.argsort(jnp.argsort(-levels, axis=1, stable=True), axis=1, stable=True)
    first = jnp.floor(jax.random.uniform(k1, (m, 1)) * (n - w + 1)).astype(jnp.int32)
    inside = (pos >= first) & (pos < first + w)
    lo = jnp.min(jnp.where(inside, levels, jnp.inf), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(inside, levels, -jnp.inf), axis=1, keepdims=True)
    shuffled = lo + jax.random.uniform(k2, levels.shape) * (hi - lo + 1.0)
    moved = jnp.where(inside, shuffled, levels + 0.5)
    have = (state.attr_ms[:m] < NO_SOLUTION)[:, None]
    prio = prio.at[:m].set(jnp.where(have, moved, prio[:m]))
    obs = obs.at[:m].set(jnp.where(have[..., None], state.attr_bits[:m], obs[:m]))
    return obs, prio


def n_parallel(params: QIEAParams) -> int:
    """Children per island whose backward pass is the parallel SGS: the last ones, never the window
    moves, and none unless decoding backward with justification and the serial scheme."""
    if not (params.fbi and params.decode == "backward" and params.sgs == "serial"):
        return 0
    return min(params.pop_size - params.window_moves, round(params.parallel_share * params.pop_size))


def _generation(inst: Instance, state: IslandState, params: QIEAParams) -> IslandState:
    k_obs, k_mut, k_mask = jax.random.split(jax.random.fold_in(state.key, state.generation), 3)
    obs, prio = _observe(state.theta, k_obs, params.bits)
    if params.window_moves:
        obs, prio = _window_moves(state, obs, prio, jax.random.fold_in(k_obs, 1), params)
    starts, ms, keys = evaluate_population(inst, prio, params.sgs, params.fbi, params.decode, n_parallel(params))
    enc = jax.vmap(lambda s: _encode(s, params.bits))(keys)
    improve = ms <= state.attr_ms
    attr_bits = jnp.where(improve[:, None, None], enc, state.attr_bits)
    attr_ms = jnp.where(improve, ms, state.attr_ms)
    i = jnp.argmin(ms)
    better = ms[i] < state.best_ms
    best_starts = jnp.where(better, starts[i], state.best_starts)
    best_ms = jnp.where(better, ms[i], state.best_ms)
    gen = state.generation + 1
    sync = (gen % params.sync_interval) == 0
    a = jnp.argmin(attr_ms)
    attr_bits = jnp.where(sync, jnp.broadcast_to(attr_bits[a], attr_bits.shape), attr_bits)
    attr_ms = jnp.where(sync, jnp.full_like(attr_ms, attr_ms[a]), attr_ms)
    last = jnp.maximum(state.total - 1, 1).astype(jnp.float32)
    frac = jnp.clip(state.generation.astype(jnp.float32) / last, 0.0, 1.0)
    base = params.dtheta_max + (params.dtheta_min - params.dtheta_max) * frac
    gap = (ms - attr_ms).astype(jnp.float32) / jnp.maximum(attr_ms, 1).astype(jnp.float32)
    angle = base * (0.5 + 0.5 * jnp.clip(gap / params.gap_scale, 0.0, 1.0))
    direction = jnp.where(attr_bits, 1.0, -1.0) * (obs != attr_bits)
    theta = state.theta + angle[:, None, None] * direction
    mutate = jax.random.uniform(k_mask, theta.shape) < params.mutation_rate
    theta = theta + mutate * params.mutation_sigma * jax.random.normal(k_mut, theta.shape)
    theta = jnp.clip(theta, params.epsilon, jnp.pi / 2 - params.epsilon)
    per = evaluation_cost(params.pop_size, params.fbi, params.decode)
    return IslandState(theta, attr_bits, attr_ms, best_starts, best_ms, gen, state.schedules + per,
                       state.key, state.total)


def run_island(inst: Instance, state: IslandState, params: QIEAParams, generations: int) -> IslandState:
    """Run ``generations`` (static) generations on one island, without migration (jit the caller)."""
    def body(s: IslandState, _: None) -> tuple[IslandState, None]:
        return _generation(inst, s, params), None

    return jax.lax.scan(body, state, None, length=generations)[0] if generations else state


def init(inst: Instance, key: jnp.ndarray, params: QIEAParams, budget: int) -> IslandState:
    """Every island, blank, stacked along a leading axis; island ``i`` uses ``fold_in(key, i)``.

    Raises:
        PlannerError: the budget does not cover one generation.
    """
    total = params.generations(budget)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(params.islands))
    return jax.vmap(lambda k: init_island(inst, k, params, total))(keys)


def step(inst: Instance, state: IslandState, params: QIEAParams) -> IslandState:
    """One generation on every island, then ring migration when an epoch ends.

    An epoch ends every ``migration_interval`` generations and after the last one.
    """
    s = jax.vmap(lambda st: _generation(inst, st, params))(state)
    g = s.generation[0]
    due = (g % params.migration_interval == 0) | (g == s.total[0])
    return jax.tree.map(lambda a, b: jnp.where(due, a, b), migrate(s), s)


def best(state: IslandState) -> SearchResult:
    """The best island's schedule (first island wins ties) and the schedules of all islands."""
    i = jnp.argmin(state.best_ms)
    return SearchResult(state.best_starts[i], state.best_ms[i], state.schedules.sum())


def migrate(states: IslandState) -> IslandState:
    """Ring migration: each island's best attractor replaces the worst one of the next island.

    Args:
        states: Island states stacked along a leading axis ``I``.

    Returns:
        The states after migration (unchanged when ``I == 1``).
    """
    best = jnp.argmin(states.attr_ms, axis=1)
    idx = jnp.arange(states.attr_ms.shape[0])
    in_bits = jnp.roll(states.attr_bits[idx, best], 1, axis=0)
    in_ms = jnp.roll(states.attr_ms[idx, best], 1, axis=0)
    in_starts = jnp.roll(states.best_starts, 1, axis=0)
    in_best = jnp.roll(states.best_ms, 1, axis=0)
    worst = jnp.argmax(states.attr_ms, axis=1)
    take = in_ms < states.attr_ms[idx, worst]
    attr_bits = states.attr_bits.at[idx, worst].set(
        jnp.where(take[:, None, None], in_bits, states.attr_bits[idx, worst])
    )
    attr_ms = states.attr_ms.at[idx, worst].set(jnp.where(take, in_ms, states.attr_ms[idx, worst]))
    better = in_best < states.best_ms
    return states._replace(
        attr_bits=attr_bits,
        attr_ms=attr_ms,
        best_starts=jnp.where(better[:, None], in_starts, states.best_starts),
        best_ms=jnp.where(better, in_best, states.best_ms),
    )


ALGORITHM: Algorithm[QIEAParams, IslandState] = Algorithm("qiea", init, step, best)
