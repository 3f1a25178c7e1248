"""Population evaluation (both decoding directions) and the QIEA window moves."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.planner import Activity, Project, Resource, check_schedule, read_sm, to_instance
from rlhf_core.planner.evaluate import evaluate_population
from rlhf_core.planner.params import QIEAParams, evaluation_cost
from rlhf_core.planner.qiea import _encode, _window_moves, init_island, n_parallel
from tests.planner.test_sgs import SHAPE, projects

POP = 5


def test_evaluation_cost_counts_every_scheme_pass() -> None:
    assert evaluation_cost(5, fbi=False) == 5
    assert evaluation_cost(5, fbi=True, decode="backward") == 10  # backward SGS + forward pass
    assert evaluation_cost(5, fbi=True, decode="forward") == 15  # SGS + backward + forward pass


_evaluate = {
    d: jax.jit(lambda inst, prio, d=d: evaluate_population(inst, prio, "serial", True, d))
    for d in ("backward", "forward")
}


@settings(max_examples=40, deadline=None)
@given(project=projects(), seed=st.integers(0, 2**16), decode=st.sampled_from(["backward", "forward"]))
def test_decoded_schedules_are_feasible_and_keys_never_lose(project: Project, seed: int, decode: str) -> None:
    arr = project.arrays()
    n = arr.durations.shape[0]
    inst = to_instance(arr, SHAPE)
    prio = jax.random.uniform(jax.random.PRNGKey(seed), (POP, SHAPE[0]))
    starts, ms, keys = _evaluate[decode](inst, prio)
    for i in range(POP):
        assert check_schedule(arr, np.asarray(starts[i])[:n]) == int(ms[i])
    # Decoding the re-encoded keys rebuilds a schedule at least as short (attractors never lose).
    again_starts, again_ms, _ = _evaluate[decode](inst, keys)
    assert (np.asarray(again_ms) <= np.asarray(ms)).all()
    for i in range(POP):
        check_schedule(arr, np.asarray(again_starts[i])[:n])


def _order(levels: np.ndarray) -> list[int]:
    return np.argsort(-levels, kind="stable").tolist()


def test_window_moves_shuffle_one_contiguous_window_of_the_attractor_order() -> None:
    n, bits, m = 20, 8, 3
    params = QIEAParams(pop_size=6, bits=bits, window_moves=m, window_frac=0.25)
    inst = to_instance(Project(
        name="p", resources=(Resource(name="gpu", capacity=1),),
        activities=tuple(Activity(name=f"a{j}", duration=1, demands={"gpu": 1}) for j in range(n)),
    ).arrays())
    state = init_island(inst, jax.random.PRNGKey(0), params, 10)
    obs = jax.random.uniform(jax.random.PRNGKey(1), state.theta.shape) < 0.5
    prio = jax.random.uniform(jax.random.PRNGKey(2), (6, n)) * 256
    # No attractor yet: the observed children are kept.
    same_obs, same_prio = _window_moves(state, obs, prio, jax.random.PRNGKey(3), params)
    assert np.array_equal(same_obs, obs) and np.array_equal(same_prio, prio)

    rng = np.random.default_rng(0)
    attr_keys = np.stack([rng.permutation(n) / (n + 1) for _ in range(6)]).astype(np.float32)
    attr_bits = jax.vmap(lambda k: _encode(k, bits))(jnp.asarray(attr_keys))
    state = state._replace(attr_bits=attr_bits, attr_ms=jnp.full(6, 10, jnp.int32))
    new_obs, new_prio = _window_moves(state, obs, prio, jax.random.PRNGKey(4), params)
    assert np.array_equal(new_prio[m:], prio[m:]) and np.array_equal(new_obs[m:], obs[m:])
    assert np.array_equal(new_obs[:m], attr_bits[:m])
    w = round(0.25 * n)
    changed = 0
    for i in range(m):
        before, after = _order(attr_keys[i]), _order(np.asarray(new_prio[i]))
        diff = [p for p in range(n) if before[p] != after[p]]
        if diff:
            changed += 1
            assert diff[-1] - diff[0] < w  # only positions inside one window of w moved
            span = slice(diff[0], diff[-1] + 1)
            assert sorted(before[span]) == sorted(after[span])  # ... among themselves
    assert changed >= 1


def test_mixed_evaluation_builds_the_last_rows_with_the_parallel_sgs(shared_data) -> None:
    proj = read_sm(shared_data / "psplib/j30/instances/j3013_1.sm")
    arr, inst = proj.arrays(), to_instance(proj.arrays())
    prio = jax.random.uniform(jax.random.PRNGKey(4), (8, inst.dur.shape[0]))
    mixed = jax.jit(lambda q: evaluate_population(inst, q, "serial", True, "backward", 3))(prio)
    serial = evaluate_population(inst, prio, "serial", True, "backward")
    parallel = evaluate_population(inst, prio, "parallel", True, "backward")
    # Rows 0-4: the serial backward pass; rows 5-7: the parallel one; both justified forward.
    for got, serial_row, parallel_row in zip(mixed, serial, parallel, strict=True):
        assert np.array_equal(np.asarray(got[:5]), np.asarray(serial_row[:5]))
        assert np.array_equal(np.asarray(got[5:]), np.asarray(parallel_row[5:]))
    assert not np.array_equal(np.asarray(serial[0][5:]), np.asarray(parallel[0][5:]))
    for starts, ms in zip(np.asarray(mixed[0]), np.asarray(mixed[1]), strict=True):
        assert check_schedule(arr, starts[: proj.n_activities], where=proj.name) == ms
    with pytest.raises(ValueError, match="n_parallel=3 needs fbi=True and decode='backward'"):
        evaluate_population(inst, prio, "serial", True, "forward", 3)


def test_qiea_parallel_share_takes_observed_children_only_and_only_when_it_applies() -> None:
    assert n_parallel(QIEAParams(pop_size=4, window_moves=2)) == 1
    assert n_parallel(QIEAParams(pop_size=8, window_moves=2)) == 2
    assert n_parallel(QIEAParams(pop_size=4, window_moves=2, parallel_share=1.0)) == 2
    assert n_parallel(QIEAParams(pop_size=4, sgs="parallel")) == 0
    assert n_parallel(QIEAParams(pop_size=4, fbi=False)) == 0
    assert n_parallel(QIEAParams(pop_size=4, decode="forward")) == 0
