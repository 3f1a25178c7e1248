"""Bi-population genetic algorithm (BPGA) with peak crossover for the RCPSP.

Two populations of schedules: left-justified ones (every activity as early as the order allows)
and right-justified ones (as late as possible before the makespan). Children of left-justified
parents are decoded by ONE backward serial SGS pass and enter the right-justified population;
children of right-justified parents are decoded by one forward pass and enter the left-justified
one. So every generated schedule is at the same time a new child and a justification of its
parents' combination, and a child costs one schedule where forward-backward improvement of an
arbitrary child costs two or three.

A child takes its keys (normalised finish times for a backward pass, normalised start times for
a forward one) from its father inside the father's *peak*: the time window of random length
(``peak_min``..``peak_max`` of the makespan) with the highest total resource utilisation, where
the father's packing is the hard-won part; every other activity takes its mother's key. Fathers
are chosen by binary tournament, mothers uniformly; a few keys are perturbed (mutation, at a rate
that falls linearly over the run from ``mutation_rate`` to ``mutation_end``: diversity early,
intensification around the elites late). The
first ``window_moves`` children instead copy their father's keys and reshuffle one window of
consecutive positions (a decomposition move). The last ``parallel_share`` of the children are
decoded by the parallel SGS (non-delay schedules), the rest by the serial one. Each population keeps
its best ``pop_size`` members among parents and children (elitist).

The elitist populations converge fast: on PSPLIB j30 their members hold one makespan after
about 2,000 schedules, and most instances that end above their optimum made their last
improvement within the first 1,200. So after ``restart_after`` generations without a better makespan in the
populations, both are re-seeded (a restart): the next backward half decodes random priorities
and each half replaces its population instead of merging into it. A restart costs the same
schedules as any generation and the best schedule found so far is kept aside, so later
restarts are independent tries at the instance with the remaining budget.

Deterministic by key; pure (``run_bpga`` takes and returns :class:`BPGAState`).

References:
    Debels, D. & Vanhoucke, M. (2007). A decomposition-based genetic algorithm for the
    resource-constrained project-scheduling problem. Operations Research 55(3), 457-469.
    Valls, V., Ballestin, F. & Quintanilla, S. (2008). A hybrid genetic algorithm for the
    resource-constrained project scheduling problem. EJOR 185(2), 495-508.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlhf_core.planner.instance import Instance
from rlhf_core.planner.sgs import makespan, mixed_passes


class BPGAParams(NamedTuple):
    """Static hyper-parameters (picked on PSPLIB j60, resource strength 0.2; README)."""

    pop_size: int = 80
    tournament: int = 2
    peak_min: float = 0.1
    peak_max: float = 0.35
    mutation_rate: float = 0.05
    mutation_end: float = 0.0
    mutation_sigma: float = 0.05
    window_moves: int = 8
    window_frac: float = 0.25
    parallel_share: float = 0.25
    restart_after: int = 15


class BPGAState(NamedTuple):
    """Both populations (start times ``int32[P, N]`` and makespans), the best schedule, counters.

    ``pop_best`` is the best makespan the populations reached since their last restart and
    ``stall`` the generations since it last improved.
    """

    left: jnp.ndarray
    left_ms: jnp.ndarray
    right: jnp.ndarray
    right_ms: jnp.ndarray
    best_starts: jnp.ndarray
    best_ms: jnp.ndarray
    schedules: jnp.ndarray
    pop_best: jnp.ndarray
    stall: jnp.ndarray


_EMPTY = 2**30


def _utilisation(inst: Instance, starts: jnp.ndarray) -> jnp.ndarray:
    """``float32[T]``: summed demand / capacity over the resources, per period."""
    t = inst.tgrid
    active = ((t[None, :] >= starts[:, None]) & (t[None, :] < (starts + inst.dur)[:, None]))
    use = active.astype(jnp.float32).T @ inst.req.astype(jnp.float32)
    return (use / jnp.maximum(inst.cap, 1)[None, :].astype(jnp.float32)).sum(-1)


def _keys(inst: Instance, starts: jnp.ndarray, ms: jnp.ndarray, to_backward: bool) -> jnp.ndarray:
    """Priorities that replay a schedule in the next pass's direction (normalised by makespan)."""
    msf = jnp.maximum(ms, 1).astype(jnp.float32)
    if to_backward:
        return (starts + inst.dur).astype(jnp.float32) / msf
    return 1.0 - starts.astype(jnp.float32) / msf


def _peak_child(
    inst: Instance, key: jnp.ndarray, father: jnp.ndarray, f_ms: jnp.ndarray, mother: jnp.ndarray,
    m_ms: jnp.ndarray, to_backward: bool, params: BPGAParams, rate: jnp.ndarray | float,
) -> jnp.ndarray:
    """Father's keys inside his peak, mother's elsewhere, then mutation at ``rate`` (``float32[N]``)."""
    n, t_len = father.shape[0], inst.tgrid.shape[0]
    k_len, k_tie, k_mut, k_val = jax.random.split(key, 4)
    frac = params.peak_min + (params.peak_max - params.peak_min) * jax.random.uniform(k_len)
    length = jnp.maximum(1, jnp.round(frac * f_ms)).astype(jnp.int32)
    cum = jnp.concatenate([jnp.zeros(1, jnp.float32), jnp.cumsum(_utilisation(inst, father))])
    t1 = inst.tgrid
    load = cum[jnp.minimum(t1 + length, t_len)] - cum[t1]
    load = jnp.where(t1 <= f_ms - length, load + 1e-3 * jax.random.uniform(k_tie, (t_len,)), -jnp.inf)
    start = jnp.argmax(load)
    inside = (father >= start) & (father < start + length)
    child = jnp.where(inside, _keys(inst, father, f_ms, to_backward), _keys(inst, mother, m_ms, to_backward))
    mutate = jax.random.uniform(k_mut, (n,)) < rate
    return child + mutate * params.mutation_sigma * jax.random.normal(k_val, (n,))


def _window_child(
    inst: Instance, key: jnp.ndarray, father: jnp.ndarray, f_ms: jnp.ndarray, to_backward: bool,
    params: BPGAParams,
) -> jnp.ndarray:
    """Father's keys with one window of ``window_frac * N`` consecutive positions reshuffled.

    The activities before and after the window keep their order, so the next pass re-solves
    the window with the rest of the father's schedule around it (a decomposition move, after
    Debels & Vanhoucke).
    """
    n = father.shape[0]
    k_pos, k_val = jax.random.split(key)
    keys = _keys(inst, father, f_ms, to_backward)
    w = min(n, max(2, round(params.window_frac * n)))
    pos = jnp.argsort(jnp.argsort(-keys, stable=True), stable=True)
    first = jnp.floor(jax.random.uniform(k_pos) * (n - w + 1)).astype(jnp.int32)
    inside = (pos >= first) & (pos < first + w)
    lo = jnp.min(jnp.where(inside, keys, jnp.inf))
    hi = jnp.max(jnp.where(inside, keys, -jnp.inf))
    return jnp.where(inside, lo + jax.random.uniform(k_val, (n,)) * (hi - lo), keys)


def n_parallel(params: BPGAParams) -> int:
    """Children per half-generation decoded by the parallel SGS (the last ones; static).

    The parallel scheme builds non-delay schedules, a smaller space that often holds the best
    schedules of tightly constrained projects; the serial scheme's active schedules include an
    optimal one (Hartmann's self-adapting GA also uses both). On PSPLIB j60 a quarter beat the
    serial scheme alone and shares of 0.1, 0.35 and 0.5 (README).
    """
    return min(params.pop_size - params.window_moves, round(params.parallel_share * params.pop_size))


def _half(
    inst: Instance, key: jnp.ndarray, src: jnp.ndarray, src_ms: jnp.ndarray, dst: jnp.ndarray,
    dst_ms: jnp.ndarray, to_backward: bool, params: BPGAParams, rate: jnp.ndarray, fresh: jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Children of ``src`` decoded in the other direction, merged into ``dst`` (elitist).

    When ``fresh`` (a restart) the children replace ``dst`` instead, and a backward half decodes
    random priorities instead of children of ``src``.
    """
    p = params.pop_size
    k_sel, k_mom, k_x = jax.random.split(key, 3)
    cand = jax.random.randint(k_sel, (p, params.tournament), 0, p)
    dad = cand[jnp.arange(p), jnp.argmin(src_ms[cand], axis=1)]
    mom = jax.random.randint(k_mom, (p,), 0, p)
    def child(k: jnp.ndarray, a: jnp.ndarray, b: jnp.ndarray, window: jnp.ndarray) -> jnp.ndarray:
        k_peak, k_win = jax.random.split(k)
        peak = _peak_child(inst, k_peak, src[a], src_ms[a], src[b], src_ms[b], to_backward, params, rate)
        if not params.window_moves:
            return peak
        return jnp.where(window, _window_child(inst, k_win, src[a], src_ms[a], to_backward, params), peak)

    window = jnp.arange(p) < params.window_moves
    prio = jax.vmap(child)(jax.random.split(k_x, p), dad, mom, window)
    if to_backward:
        prio = jnp.where(fresh, jax.random.uniform(jax.random.fold_in(key, 1), prio.shape), prio)
    dst_ms = jnp.where(fresh, _EMPTY, dst_ms)
    starts = mixed_passes(inst, prio, to_backward, n_parallel(params))
    ms = jax.vmap(lambda s: makespan(inst, s))(starts)
    keep = jnp.argsort(jnp.concatenate([dst_ms, ms]), stable=True)[:p]
    i = jnp.argmin(ms)
    return jnp.concatenate([dst, starts])[keep], jnp.concatenate([dst_ms, ms])[keep], starts[i], ms[i]


def _take_best(state: BPGAState, starts: jnp.ndarray, ms: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    better = ms < state.best_ms
    return jnp.where(better, starts, state.best_starts), jnp.where(better, ms, state.best_ms)


def init_bpga(inst: Instance, key: jnp.ndarray, params: BPGAParams) -> BPGAState:
    """Random priorities, one forward pass each: the left-justified population (``P`` schedules)."""
    n, p = inst.dur.shape[0], params.pop_size
    starts = mixed_passes(inst, jax.random.uniform(key, (p, n)), False, n_parallel(params))
    ms = jax.vmap(lambda s: makespan(inst, s))(starts)
    i = jnp.argmin(ms)
    return BPGAState(
        starts, ms, jnp.zeros_like(starts), jnp.full((p,), _EMPTY, jnp.int32),
        starts[i], ms[i], jnp.int32(p), ms[i], jnp.int32(0),
    )


def _step(
    inst: Instance, state: BPGAState, key: jnp.ndarray, to_backward: bool, params: BPGAParams, rate: jnp.ndarray,
    fresh: jnp.ndarray,
) -> BPGAState:
    if to_backward:
        dst, dst_ms, s, m = _half(
            inst, key, state.left, state.left_ms, state.right, state.right_ms, True, params, rate, fresh,
        )
        state = state._replace(right=dst, right_ms=dst_ms)
    else:
        dst, dst_ms, s, m = _half(
            inst, key, state.right, state.right_ms, state.left, state.left_ms, False, params, rate, fresh,
        )
        state = state._replace(left=dst, left_ms=dst_ms)
    best_starts, best_ms = _take_best(state, s, m)
    return state._replace(best_starts=best_starts, best_ms=best_ms, schedules=state.schedules + params.pop_size)


def run_bpga(inst: Instance, state: BPGAState, key: jnp.ndarray, params: BPGAParams, halves: int) -> BPGAState:
    """Run ``halves`` half-generations, alternating backward (left -> right) and forward passes.

    Each half-generation generates ``pop_size`` schedules. ``lax.scan`` over pairs; jit the caller.
    A generation (pair of halves) starting with ``stall >= restart_after`` is a restart; the
    decision is per instance, so a ``vmap`` over instances restarts each on its own.

    Args:
        inst: A single padded instance.
        state: From :func:`init_bpga` (or an earlier run with an even number of halves).
        key: PRNG key; half ``h`` uses ``fold_in(key, h)``.
        params: Hyper-parameters.
        halves: Half-generations to run (static).
    """
    rates = mutation_rates(params, halves)

    def pair(s: BPGAState, h: jnp.ndarray) -> tuple[BPGAState, None]:
        fresh = restart_due(s, params)
        s = _step(inst, s, jax.random.fold_in(key, 2 * h), True, params, rates[2 * h], fresh)
        s = _step(inst, s, jax.random.fold_in(key, 2 * h + 1), False, params, rates[2 * h + 1], fresh)
        return _track_stall(s, fresh), None

    if halves >= 2:
        state = jax.lax.scan(pair, state, jnp.arange(halves // 2))[0]
    if halves % 2:
        # A lone last half never restarts: nothing would be left to build on the fresh population.
        last = jax.random.fold_in(key, halves - 1)
        state = _step(inst, state, last, True, params, rates[halves - 1], jnp.bool_(False))
    return state


def mutation_rates(params: BPGAParams, halves: int) -> jnp.ndarray:
    """``float32[halves]``: the mutation rate of each half-generation of one :func:`run_bpga` call.

    Falls linearly, one step per generation (a backward and a forward half), from
    ``mutation_rate`` towards ``mutation_end`` (reached after the last half); equal values give a
    constant rate. On PSPLIB j60 a fall to zero beat a constant 0.05, a fall to 0.01 and a step
    down to 0.01 half-way (README).
    """
    x = (2 * (jnp.arange(halves) // 2)).astype(jnp.float32) / max(halves, 1)
    return params.mutation_rate + (params.mutation_end - params.mutation_rate) * x


def restart_due(state: BPGAState, params: BPGAParams) -> jnp.ndarray:
    """``bool``: the populations' best has not improved for ``restart_after`` generations (0 = never)."""
    if not params.restart_after:
        return jnp.bool_(False)
    return state.stall >= params.restart_after


def _track_stall(state: BPGAState, fresh: jnp.ndarray) -> BPGAState:
    """After a generation: reset ``pop_best`` on a restart, else count a generation without progress."""
    now = jnp.minimum(jnp.min(state.left_ms), jnp.min(state.right_ms))
    improved = fresh | (now < state.pop_best)
    return state._replace(
        pop_best=jnp.where(fresh, now, jnp.minimum(now, state.pop_best)),
        stall=jnp.where(improved, 0, state.stall + 1),
    )
