"""Bi-population GA: both populations hold feasible, justified schedules; peak crossover; counting."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlhf_core.planner import BPGAParams, check_schedule, read_sm, to_instance
from rlhf_core.planner.bpga import (
    ALGORITHM,
    _keys,
    _peak_child,
    _utilisation,
    _window_child,
    init,
    mutation_rates,
    n_parallel,
    restart_due,
    step,
)
from rlhf_core.planner.cpm import critical_path
from rlhf_core.planner.search import run_steps
from rlhf_core.planner.sgs import backward_sgs, mixed_passes, parallel_sgs, serial_sgs

PARAMS = BPGAParams(pop_size=12, window_moves=8)


@pytest.fixture(scope="module")
def j30(shared_data: Path):
    proj = read_sm(shared_data / "psplib/j30/instances/j3013_1.sm")
    return proj, proj.arrays(), to_instance(proj.arrays())


def _run(inst, halves: int, seed: int = 3, planned: int | None = None):
    """``init``, then ``halves`` half-generations of a run planned for ``planned`` (default: as many)."""
    budget = PARAMS.pop_size * (1 + (halves if planned is None else planned))
    state = init(inst, jax.random.PRNGKey(seed), PARAMS, budget)
    steps = (halves + 1) // 2
    assert planned is not None or steps == PARAMS.generations(budget)
    return jax.jit(lambda s: run_steps(ALGORITHM, inst, s, PARAMS, steps))(state)


def test_populations_are_feasible_justified_and_elitist(j30) -> None:
    proj, arrays, inst = j30
    state = _run(inst, halves=7)
    n = proj.n_activities
    assert int(state.schedules) == PARAMS.pop_size * 8
    for pop, pop_ms in ((state.left, state.left_ms), (state.right, state.right_ms)):
        for starts, ms in zip(np.asarray(pop), np.asarray(pop_ms), strict=True):
            assert check_schedule(arrays, starts[:n], where=proj.name) == ms
    # Left-justified members start at 0 (some activity), right-justified members end together.
    assert (np.asarray(state.left).min(axis=1) == 0).all()
    dur = np.asarray(inst.dur)
    assert ((np.asarray(state.right) + dur).max(axis=1) == np.asarray(state.right_ms)).all()
    # Populations are sorted (elitist merge) and the best is the best of everything kept.
    assert (np.diff(np.asarray(state.left_ms)) >= 0).all() and (np.diff(np.asarray(state.right_ms)) >= 0).all()
    assert int(state.best_ms) <= min(int(state.left_ms[0]), int(state.right_ms[0]))
    assert check_schedule(arrays, np.asarray(state.best_starts)[:n], where=proj.name) == int(state.best_ms)
    assert int(state.best_ms) >= critical_path(arrays).length
    # The search improves on its random initial population.
    first = init(inst, jax.random.PRNGKey(3), PARAMS, PARAMS.pop_size)
    assert int(state.best_ms) <= int(first.best_ms)


def test_same_key_same_result_and_odd_half_counts(j30) -> None:
    _, _, inst = j30
    a, b = _run(inst, halves=5), _run(inst, halves=5)
    assert np.array_equal(np.asarray(a.best_starts), np.asarray(b.best_starts))
    assert int(a.schedules) == PARAMS.pop_size * 6
    # An odd count ends with a backward half: the right population was filled last.
    assert int(a.right_ms[-1]) < 2**30


def test_peak_child_takes_the_fathers_peak_and_the_rest_from_the_mother(j30) -> None:
    _, _, inst = j30
    state = _run(inst, halves=2)
    father, mother = state.left[0], state.left[5]
    f_ms, m_ms = state.left_ms[0], state.left_ms[5]
    kf = np.asarray(_keys(inst, father, f_ms, True))
    km = np.asarray(_keys(inst, mother, m_ms, True))
    whole = BPGAParams(peak_min=1.0, peak_max=1.0)
    child = np.asarray(_peak_child(inst, jax.random.PRNGKey(0), father, f_ms, mother, m_ms, True, whole, 0.0))
    assert np.array_equal(child, kf)
    # At rate 1 every key is perturbed; the rate is the one passed in, not a fixed parameter.
    mutated = np.asarray(_peak_child(inst, jax.random.PRNGKey(0), father, f_ms, mother, m_ms, True, whole, 1.0))
    assert (mutated != kf).all()
    narrow = BPGAParams(peak_min=0.2, peak_max=0.2)
    child = np.asarray(_peak_child(inst, jax.random.PRNGKey(1), father, f_ms, mother, m_ms, True, narrow, 0.0))
    from_father = (child == kf) & (kf != km)
    assert from_father.any() and ((child == kf) | (child == km)).all()
    # The father's keys cover exactly the activities starting in one window of that length, and
    # that window carries the highest utilisation (ties are broken by a 1e-3 jitter).
    fs = np.asarray(father)
    length = int(round(0.2 * int(f_ms)))
    util = np.asarray(_utilisation(inst, father))
    loads = np.array([util[t:t + length].sum() for t in range(int(f_ms) - length + 1)])
    fits = [
        t for t in range(loads.shape[0])
        if loads[t] >= loads.max() - 1e-3
        and np.array_equal(child[(fs >= t) & (fs < t + length)], kf[(fs >= t) & (fs < t + length)])
        and from_father[(fs < t) | (fs >= t + length)].sum() == 0
    ]
    assert fits, "no maximum-load window explains which keys came from the father"


def test_window_child_reshuffles_one_run_of_consecutive_positions(j30) -> None:
    _, _, inst = j30
    state = _run(inst, halves=2)
    father, f_ms = state.right[0], state.right_ms[0]
    keys = np.asarray(_keys(inst, father, f_ms, False))
    params = BPGAParams(window_frac=0.25)
    child = np.asarray(_window_child(inst, jax.random.PRNGKey(4), father, f_ms, False, params))
    n = keys.shape[0]
    w = round(0.25 * n)
    order = np.lexsort((np.arange(n), -keys))  # positions in the father's order
    changed = np.flatnonzero(child != keys)
    assert 0 < changed.size <= w
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    lo, hi = rank[changed].min(), rank[changed].max()
    assert hi - lo < w  # every changed key lies in one window of w consecutive positions
    window = order[lo:hi + 1]
    assert child[window].min() >= keys[window].min() and child[window].max() <= keys[window].max()


def test_utilisation_matches_a_numpy_profile(j30) -> None:
    proj, arrays, inst = j30
    state = _run(inst, halves=1)
    starts = np.asarray(state.left[0])
    util = np.asarray(_utilisation(inst, jnp.asarray(starts)))
    ref = np.zeros(util.shape[0])
    dur, req, cap = np.asarray(inst.dur), np.asarray(inst.req), np.asarray(inst.cap)
    for j in range(starts.shape[0]):
        ref[starts[j]:starts[j] + dur[j]] += (req[j] / np.maximum(cap, 1)).sum()
    assert np.allclose(util, ref, atol=1e-4)


@pytest.mark.parametrize("to_backward", [False, True])
def test_mixed_decode_uses_the_parallel_sgs_for_the_last_share(j30, to_backward: bool) -> None:
    proj, arrays, inst = j30
    prio = jax.random.uniform(jax.random.PRNGKey(9), (12, inst.dur.shape[0]))
    params = BPGAParams(pop_size=12, window_moves=1, parallel_share=0.25)
    n_par = n_parallel(params)
    assert n_par == 3
    got = np.asarray(mixed_passes(inst, prio, to_backward, n_par))
    for i, q in enumerate(prio):
        scheme = parallel_sgs if i >= 12 - n_par else serial_sgs
        want = backward_sgs(inst, q, scheme) if to_backward else scheme(inst, q)
        assert np.array_equal(got[i], np.asarray(want)), i
        check_schedule(arrays, got[i][: proj.n_activities], where=f"{proj.name} row {i}")
    # The two schemes differ on this project, so the split is observable (not a no-op).
    serial_only = np.asarray(mixed_passes(inst, prio, to_backward, 0))
    assert not np.array_equal(serial_only[-n_par:], got[-n_par:])
    assert np.array_equal(serial_only[:-n_par], got[:-n_par])


def test_parallel_share_leaves_the_window_moves_serial() -> None:
    assert n_parallel(BPGAParams(pop_size=80, window_moves=8, parallel_share=0.25)) == 20
    assert n_parallel(BPGAParams(pop_size=10, window_moves=4, parallel_share=1.0)) == 6
    assert n_parallel(BPGAParams(pop_size=80, parallel_share=0.0)) == 0


def test_mutation_rate_falls_linearly_per_generation() -> None:
    rates = np.asarray(mutation_rates(BPGAParams(mutation_rate=0.05, mutation_end=0.0), 61))
    assert rates.shape == (61,)
    assert rates[0] == pytest.approx(0.05) and rates[-1] == pytest.approx(0.05 / 61, rel=1e-4)
    assert (rates[0::2][: rates[1::2].size] == rates[1::2]).all()  # both halves of a generation share it
    assert (np.diff(rates[0::2]) < 0).all() and np.allclose(np.diff(rates[0::2]), -0.1 / 61)
    flat = np.asarray(mutation_rates(BPGAParams(mutation_rate=0.03, mutation_end=0.03), 8))
    assert np.allclose(flat, 0.03)


@pytest.mark.parametrize("stalled", [False, True])
def test_a_stalled_search_restarts_both_populations_and_keeps_its_best(j30, stalled: bool) -> None:
    proj, arrays, inst = j30
    params = PARAMS.model_copy(update={"restart_after": 3})
    state = _run(inst, halves=4, planned=6)
    # Mark every member with an impossible makespan of 1: an elitist merge keeps them all, a
    # restart must drop them all.
    marked = state._replace(
        left_ms=jnp.ones_like(state.left_ms), right_ms=jnp.ones_like(state.right_ms),
        pop_best=jnp.int32(1), stall=jnp.int32(3 if stalled else 2),
    )
    assert bool(restart_due(marked, params)) == stalled
    after = jax.jit(lambda s: step(inst, s, params))(marked._replace(key=jax.random.PRNGKey(7)))
    assert int(after.schedules) == int(state.schedules) + 2 * params.pop_size
    assert int(after.best_ms) <= int(state.best_ms)
    assert check_schedule(arrays, np.asarray(after.best_starts)[: proj.n_activities], where=proj.name) == int(after.best_ms)
    left_ms, right_ms = np.asarray(after.left_ms), np.asarray(after.right_ms)
    if not stalled:
        assert (left_ms == 1).all() and (right_ms == 1).all()
        assert int(after.stall) == 3 and int(after.pop_best) == 1
        return
    assert (left_ms > 1).all() and (right_ms > 1).all()
    for pop, pop_ms in ((after.left, left_ms), (after.right, right_ms)):
        for starts, ms in zip(np.asarray(pop), pop_ms, strict=True):
            assert check_schedule(arrays, starts[: proj.n_activities], where=proj.name) == ms
    assert int(after.stall) == 0 and int(after.pop_best) == min(left_ms.min(), right_ms.min())
    # The fresh right population was decoded from random priorities: at most a few of its
    # members coincide with the old right population, which a merge would have kept.
    old = {tuple(r) for r in np.asarray(state.right)}
    assert sum(tuple(r) in old for r in np.asarray(after.right)) < params.pop_size // 2


def test_stall_counts_generations_without_progress_and_zero_never_restarts(j30) -> None:
    _, _, inst = j30
    state = _run(inst, halves=2, planned=8)
    never = PARAMS.model_copy(update={"restart_after": 0})
    assert not bool(restart_due(state._replace(stall=jnp.int32(10**6)), never))
    stuck = state._replace(pop_best=jnp.int32(1), stall=jnp.int32(0), key=jax.random.PRNGKey(5))
    after = jax.jit(lambda s: run_steps(ALGORITHM, inst, s, never, 2))(stuck)
    assert int(after.stall) == 2 and int(after.pop_best) == 1
    worse = state._replace(pop_best=jnp.int32(10**6), stall=jnp.int32(5), key=jax.random.PRNGKey(5))
    after = jax.jit(lambda s: step(inst, s, never))(worse)
    assert int(after.stall) == 0
    assert int(after.pop_best) == min(int(after.left_ms[0]), int(after.right_ms[0]))


def test_the_lone_last_half_of_an_odd_run_never_restarts(j30) -> None:
    _, _, inst = j30
    params = PARAMS.model_copy(update={"restart_after": 1})
    state = _run(inst, halves=4, planned=5)  # one backward half is left
    marked = state._replace(right_ms=jnp.ones_like(state.right_ms), stall=jnp.int32(9))
    assert bool(restart_due(marked, params))
    after = jax.jit(lambda s: step(inst, s, params))(marked)
    assert int(after.schedules) == int(state.schedules) + params.pop_size
    assert (np.asarray(after.right_ms) == 1).all()  # merged into, not replaced
    assert np.array_equal(np.asarray(after.left), np.asarray(state.left))  # no forward half ran
    assert int(after.stall) == 9
