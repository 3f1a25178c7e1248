"""Bi-population genetic algorithm (BPGA) with peak crossover for the RCPSP.

Two populations of schedules: left-justified ones (every activity as early as the order allows)
and right-justified ones (as late as possible before the makespan). Children of left-justified
parents are decoded by ONE backward SGS pass and enter the right-justified population; children
of right-justified parents are decoded by one forward pass and enter the left-justified one. So
every generated schedule is at the same time a new child and a justification of its parents'
combination: a child costs one schedule where forward-backward improvement of an arbitrary child
costs two or three.

A child takes its keys (normalised finish times for a backward pass, normalised start times for
a forward one) from its father inside the father's *peak*: the time window of random length
(``peak_min``..``peak_max`` of the makespan) with the highest total resource utilisation, where
the father's packing is the hard-won part; every other activity takes its mother's key. Fathers
are chosen by binary tournament, mothers uniformly; a few keys are perturbed, at a rate that
falls over the run from ``mutation_rate`` to ``mutation_end`` (diversity early, intensification
around the elites late). The first ``window_moves`` children instead copy their father's keys and
reshuffle one window of consecutive positions (a decomposition move). The last
``parallel_share`` of the children are decoded by the parallel SGS, whose non-delay schedules
often hold the best schedules of tightly constrained projects; the rest by the serial one, whose
active schedules include an optimal one. Each population keeps its best ``pop_size`` members among
parents and children (elitist).

Elitist populations converge, so after ``restart_after`` generations without a better makespan
in the populations both are re-seeded (a restart): the next backward half decodes random
priorities and each half replaces its population instead of merging into it. The best schedule
so far is kept aside, so a restart is an independent try with the remaining budget.

Interface (:mod:`rlhf_core.planner.algorithm`): :func:`init` builds the left-justified population
(one half-generation), each :func:`step` is one generation (a backward half, then a forward
half), :func:`best` reads the result. Deterministic by key; pure. What the defaults measured:
``docs/planner-tuning.md``.

References:
    Debels, D. & Vanhoucke, M. (2007). A decomposition-based genetic algorithm for the
    resource-constrained project-scheduling problem. Operations Research 55(3), 457-469.
    Valls, V., Ballestin, F. & Quintanilla, S. (2008). A hybrid genetic algorithm for the
    resource-constrained project scheduling problem. EJOR 185(2), 495-508.
    Hartmann, S. (2002). A self-adapting genetic algorithm for project scheduling under resource
    constraints. Naval Research Logistics 49(5), 433-448 (serial and parallel decoding).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlhf_core.planner.algorithm import Algorithm, SearchResult
from rlhf_core.planner.instance import Instance
from rlhf_core.planner.params import BPGAParams
from rlhf_core.planner.sgs import makespan, mixed_passes


class BPGAState(NamedTuple):
    """Both populations (start times ``int32[P, N]`` and makespans), the best schedule, counters.

    ``pop_best`` is the best makespan the populations reached since their last restart and
    ``stall`` the generations since it last improved. Half ``h`` of the run (0-based, after
    ``init``) draws from ``fold_in(key, h)``; ``generation`` counts generations (pairs of halves)
    and ``halves`` is the run's number of halves after ``init``.
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
    key: jnp.ndarray
    generation: jnp.ndarray
    halves: jnp.ndarray


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
    """Children per half-generation decoded by the parallel SGS (the last ones, never a window
    move; static)."""
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


def init(inst: Instance, key: jnp.ndarray, params: BPGAParams, budget: int) -> BPGAState:
    """Random priorities, one forward pass each: the left-justified population (``P`` schedules).

    The population draws from ``fold_in(key, 0)``, the generations after it from
    ``fold_in(key, 1)``; the budget fixes the run's halves (``budget // P - 1``).

    Raises:
        PlannerError: the budget does not cover this first population.
    """
    params.generations(budget)
    n, p = inst.dur.shape[0], params.pop_size
    prio = jax.random.uniform(jax.random.fold_in(key, 0), (p, n))
    starts = mixed_passes(inst, prio, False, n_parallel(params))
    ms = jax.vmap(lambda s: makespan(inst, s))(starts)
    i = jnp.argmin(ms)
    return BPGAState(
        starts, ms, jnp.zeros_like(starts), jnp.full((p,), _EMPTY, jnp.int32),
        starts[i], ms[i], jnp.int32(p), ms[i], jnp.int32(0),
        jax.random.fold_in(key, 1), jnp.int32(0), jnp.int32(budget // p - 1),
    )


def _half_step(
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


def step(inst: Instance, state: BPGAState, params: BPGAParams) -> BPGAState:
    """One generation: a backward half (left -> right population), then a forward half.

    Each half generates ``pop_size`` schedules. A generation that starts with
    ``stall >= restart_after`` is a restart; the decision is per instance, so a ``vmap`` over
    instances restarts each on its own. When the run's halves are odd, its last generation is
    its backward half alone, which never restarts (nothing would be left to build on the fresh
    population).
    """
    h = 2 * state.generation
    rate = mutation_rate(params, h, state.halves)
    lone = h + 1 >= state.halves
    fresh = restart_due(state, params) & ~lone
    back = _half_step(inst, state, jax.random.fold_in(state.key, h), True, params, rate, fresh)
    both = _half_step(inst, back, jax.random.fold_in(state.key, h + 1), False, params, rate, fresh)
    both = _track_stall(both, fresh)
    done = jax.tree.map(lambda a, b: jnp.where(lone, a, b), back, both)
    return done._replace(generation=state.generation + 1)


def best(state: BPGAState) -> SearchResult:
    """The best schedule found (restarts keep it) and the schedules generated."""
    return SearchResult(state.best_starts, state.best_ms, state.schedules)


def mutation_rate(params: BPGAParams, half: jnp.ndarray, halves: jnp.ndarray) -> jnp.ndarray:
    """The mutation rate of half ``half`` (0-based, after ``init``) of a run of ``halves`` halves.

    Falls linearly, one step per generation (a backward and a forward half), from
    ``mutation_rate`` towards ``mutation_end`` (reached after the last half); equal values give a
    constant rate. ``half`` may be an array.
    """
    x = (2 * (half // 2)).astype(jnp.float32) / jnp.maximum(halves, 1).astype(jnp.float32)
    return params.mutation_rate + (params.mutation_end - params.mutation_rate) * x


def mutation_rates(params: BPGAParams, halves: int) -> jnp.ndarray:
    """``float32[halves]``: :func:`mutation_rate` of every half of a run."""
    return mutation_rate(params, jnp.arange(halves), jnp.int32(halves))


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


ALGORITHM: Algorithm[BPGAParams, BPGAState] = Algorithm("bpga", init, step, best)
