"""All 480 j30 instances: every returned schedule is feasible and never beats the proven optimum.

One compilation per algorithm (instances padded to a common shape, vmapped); the independent
NumPy checker verifies every schedule.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from rlhf_core.planner import (
    BPGAParams,
    GAParams,
    QIEAParams,
    SearchConfig,
    check_schedule,
    critical_path,
    instance_key,
    make_solver,
    padded_shape,
    read_sm,
    read_solutions,
    stack,
    to_instance,
)

CONFIGS = {
    "qiea": SearchConfig(budget=1000, seed=1, params=QIEAParams(islands=4, pop_size=4)),
    "ga": SearchConfig(budget=480, seed=1, params=GAParams(pop_size=16)),
    "bpga": SearchConfig(budget=1000, seed=1, params=BPGAParams(pop_size=40)),
}


@pytest.fixture(scope="module")
def j30(shared_data: Path) -> tuple[list, dict]:
    files = sorted((shared_data / "psplib/j30/instances").glob("*.sm"))
    assert len(files) == 480
    return [read_sm(f) for f in files], read_solutions(shared_data / "psplib/j30/j30opt.sm")


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["qiea", "bpga", "ga"])
def test_all_j30_feasible_and_never_below_optimum(j30: tuple[list, dict], algorithm: str) -> None:
    projects, optima = j30
    arrays = [p.arrays() for p in projects]
    shape = padded_shape(arrays)
    insts = stack([to_instance(a, shape) for a in arrays])
    config = CONFIGS[algorithm]
    result = jax.jit(jax.vmap(make_solver(config)))(insts)
    starts = np.asarray(result.starts)
    devs = []
    for i, (proj, arr) in enumerate(zip(projects, arrays, strict=True)):
        ms = check_schedule(arr, starts[i, : proj.n_activities], where=proj.name)
        assert ms == int(result.makespan[i])
        opt = optima[instance_key(proj.name)].upper
        assert ms >= opt, f"{proj.name}: makespan {ms} beats the proven optimum {opt} (a bug)"
        assert ms >= critical_path(arr).length
        devs.append((ms - opt) / opt)
    assert int(result.schedules[0]) <= config.budget
    # A real search, not one priority rule: the single-pass LFT rule is 5.58 % above optimum.
    assert float(np.mean(devs)) < 0.02
