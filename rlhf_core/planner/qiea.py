"""Quantum-inspired evolutionary algorithm (QIEA) for the RCPSP, one island at a time.

Each individual is a Q-bit angle array ``theta[N, B]``: activity ``j``'s priority (random key) is
the ``B``-bit number observed bit by bit with ``P(1) = sin(theta)^2``. Every individual keeps an
attractor (the best solution it has seen, re-encoded from the justified schedule), and a rotation
gate turns each disagreeing Q-bit toward it with an angle that shrinks over the run and grows with
the makespan gap (adaptive rotation). Angles are clamped to ``[eps, pi/2 - eps]`` (the H-epsilon
gate) and perturbed by Gaussian mutation. The default schedule starts with a large rotation
(0.38 pi, so a Q-bit that disagrees with its attractor flips its bias within a generation or two)
and ends at 0.064 pi; the H-epsilon gate keeps every bit's flip probability at
``sin(eps)^2`` (about 0.9 %), which is what explores once the population has concentrated. These
defaults were picked on PSPLIB subsets (see ``benchmarks/bench_planner.py``). The island's best
replaces every attractor every ``sync_interval`` generations; :func:`migrate` moves each island's
best to the next island (ring).

Three additions to the textbook algorithm, all measured on PSPLIB (README):

* Backward decoding: priorities are read as a right-to-left order, so an individual costs two
  schedules (a backward SGS, then the forward pass that left-justifies it) instead of three, and
  attractors are re-encoded from the justified schedule's finish times.
* A parallel share: the last ``parallel_share`` of each island's children (a quarter by
  default, never a window move) build their right-justified schedule with the parallel SGS (non-delay schedules),
  the rest with the serial one; the forward justification is serial for all. Each child keeps its
  slot, so its attractor and Q-bits learn for that decoder. On PSPLIB (every second instance, 5,000
  schedules) this took j60 from 0.722 % to 0.647 % above the best known and j30 from 0.122 % to
  0.087 % above the optima.
* Window moves (a decomposition-style local search): the first ``window_moves`` children of each
  island do not observe their Q-bits; they copy their attractor's order and shuffle one randomly
  placed window of ``window_frac * N`` consecutive positions of it, so the activities before the
  window are scheduled exactly as in the attractor and the window is re-solved with the rest
  following (after Debels & Vanhoucke's decomposition GA). They are evaluated and counted like
  every other child; their Q-bits rotate only when another child improves the attractor.

Everything is pure: ``run_island`` and ``migrate`` take and return :class:`IslandState`, so a
caller may run islands in one ``vmap`` or fan them out to separate workers.

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

from rlhf_core.planner.evaluate import DecodeName, SGSName, evaluate_population, evaluation_cost
from rlhf_core.planner.instance import Instance


class QIEAParams(NamedTuple):
    """Static hyper-parameters of the QIEA (hashable, so they can close over jitted code)."""

    pop_size: int = 8
    bits: int = 8
    dtheta_max: float = 0.38 * jnp.pi
    dtheta_min: float = 0.064 * jnp.pi
    gap_scale: float = 0.05
    mutation_rate: float = 0.01
    mutation_sigma: float = 0.1 * jnp.pi
    epsilon: float = 0.03 * jnp.pi
    sync_interval: int = 4
    sgs: SGSName = "serial"
    fbi: bool = True
    decode: DecodeName = "backward"
    window_moves: int = 2
    window_frac: float = 0.25
    parallel_share: float = 0.25


NO_SOLUTION = 2**30


class IslandState(NamedTuple):
    """The state of one island (add a leading axis for several).

    Attributes:
        theta: ``float32[P, N, B]`` Q-bit angles.
        attr_bits: ``bool[P, N, B]`` each individual's attractor, as bits.
        attr_ms: ``int32[P]`` attractor makespans.
        best_starts: ``int32[N]`` the island's best schedule.
        best_ms: ``int32[]`` its makespan.
        generation: ``int32[]`` generations done (for the rotation schedule).
        schedules: ``int32[]`` schedules generated so far.
    """

    theta: jnp.ndarray
    attr_bits: jnp.ndarray
    attr_ms: jnp.ndarray
    best_starts: jnp.ndarray
    best_ms: jnp.ndarray
    generation: jnp.ndarray
    schedules: jnp.ndarray


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


def init_island(inst: Instance, params: QIEAParams) -> IslandState:
    """A blank island: uniform Q-bits (``theta = pi/4``) and no solution yet.

    The first generation observes and evaluates it like any other (no schedule is built here).

    Args:
        inst: A single padded instance (only its shape is used).
        params: Hyper-parameters.

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


def _generation(
    inst: Instance, state: IslandState, key: jnp.ndarray, params: QIEAParams, total: int
) -> IslandState:
    k_obs, k_mut, k_mask = jax.random.split(jax.random.fold_in(key, state.generation), 3)
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
    frac = jnp.clip(state.generation.astype(jnp.float32) / max(total - 1, 1), 0.0, 1.0)
    base = params.dtheta_max + (params.dtheta_min - params.dtheta_max) * frac
    gap = (ms - attr_ms).astype(jnp.float32) / jnp.maximum(attr_ms, 1).astype(jnp.float32)
    step = base * (0.5 + 0.5 * jnp.clip(gap / params.gap_scale, 0.0, 1.0))
    direction = jnp.where(attr_bits, 1.0, -1.0) * (obs != attr_bits)
    theta = state.theta + step[:, None, None] * direction
    mutate = jax.random.uniform(k_mask, theta.shape) < params.mutation_rate
    theta = theta + mutate * params.mutation_sigma * jax.random.normal(k_mut, theta.shape)
    theta = jnp.clip(theta, params.epsilon, jnp.pi / 2 - params.epsilon)
    per = evaluation_cost(params.pop_size, params.fbi, params.decode)
    return IslandState(theta, attr_bits, attr_ms, best_starts, best_ms, gen, state.schedules + per)


def run_island(
    inst: Instance, state: IslandState, key: jnp.ndarray, params: QIEAParams,
    generations: int, total: int,
) -> IslandState:
    """Run ``generations`` QIEA generations on one island (``lax.scan``; jit the caller).

    Generation ``g`` draws its randomness from ``fold_in(key, g)``, so splitting a run into
    epochs (for migration or for separate workers) does not change the result.

    Args:
        inst: A single padded instance.
        state: The island state.
        key: The island's PRNG key (the same for every epoch).
        params: Hyper-parameters.
        generations: Generations to run now (static).
        total: Generations of the whole run (static; drives the rotation-angle schedule).

    Returns:
        The new island state.
    """
    def body(s: IslandState, _: None) -> tuple[IslandState, None]:
        return _generation(inst, s, key, params, total), None

    return jax.lax.scan(body, state, None, length=generations)[0] if generations else state


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
