"""One interface for every algorithm: init / step / best, and the driver that runs any of them."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rlhf_core.planner import (
    ALGORITHMS,
    BPGAParams,
    GAParams,
    Project,
    QIEAParams,
    SearchConfig,
    check_schedule,
    solve,
    stack,
    to_instance,
)
from rlhf_core.planner.search import run_steps

CONFIGS = {
    "qiea": SearchConfig(budget=200, seed=4, params=QIEAParams(islands=2, pop_size=4, migration_interval=2)),
    "bpga": SearchConfig(budget=90, seed=4, params=BPGAParams(pop_size=8)),  # 11 halves: odd
    "ga": SearchConfig(budget=100, seed=4, params=GAParams(pop_size=6)),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_stepping_by_hand_equals_the_driver_and_spends_the_budget(tiny: Project, name: str) -> None:
    config, algorithm = CONFIGS[name], ALGORITHMS[name]
    inst = to_instance(tiny.arrays())
    state = algorithm.init(inst, jax.random.PRNGKey(config.seed), config.params, config.budget)
    step = jax.jit(lambda s: algorithm.step(inst, s, config.params))
    steps = config.generations()
    assert steps >= 2
    for _ in range(steps):
        state = step(state)
    starts, makespan, schedules = algorithm.best(state)
    driven = jax.jit(lambda i: solve(i, config))(inst)
    assert np.array_equal(np.asarray(starts), np.asarray(driven.starts))
    assert int(makespan) == int(driven.makespan) == check_schedule(tiny.arrays(), np.asarray(starts))
    assert starts.shape == (3,) and makespan.shape == () and str(makespan.dtype) == "int32"
    per = {"qiea": 2 * 2 * 4, "bpga": 8, "ga": 2 * 6}[name]
    assert int(schedules) == int(driven.schedules) == config.budget // per * per
    # A run split into two calls finds the same schedule (the key and counters live in the state).
    half = algorithm.init(inst, jax.random.PRNGKey(config.seed), config.params, config.budget)
    half = run_steps(algorithm, inst, half, config.params, steps // 2)
    half = run_steps(algorithm, inst, half, config.params, steps - steps // 2)
    assert np.array_equal(np.asarray(algorithm.best(half).starts), np.asarray(starts))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_driver_vmaps_over_instances(tiny: Project, name: str) -> None:
    config = CONFIGS[name]
    inst = to_instance(tiny.arrays(), (4, 1, 12))
    other = to_instance(tiny.arrays()._replace(durations=np.array([1, 2, 2])), (4, 1, 12))
    both = jax.jit(jax.vmap(lambda i: solve(i, config)))(stack([inst, other]))
    for k, one in enumerate((inst, other)):
        alone = jax.jit(lambda i: solve(i, config))(one)
        assert np.array_equal(np.asarray(both.starts[k]), np.asarray(alone.starts))
        assert int(both.makespan[k]) == int(alone.makespan)
    assert [int(m) for m in both.makespan] == [5, 3]  # A takes 1 period: A, then B and C
