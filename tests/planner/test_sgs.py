"""Schedule-generation schemes and justification: hand-checked cases and random instances."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.planner import Activity, Project, Resource, check_schedule, to_instance
from rlhf_core.planner.sgs import forward_backward, keys_from_starts, parallel_sgs, serial_sgs

SHAPE = (8, 2, 41)  # every random project below is padded to this, so one compilation each
_serial = jax.jit(serial_sgs)
_parallel = jax.jit(parallel_sgs)
_fbi = jax.jit(forward_backward)


def test_serial_by_hand(tiny: Project) -> None:
    inst = to_instance(tiny.arrays())
    assert _serial(inst, jnp.array([3.0, 2.0, 1.0])).tolist() == [0, 3, 3]
    assert _serial(inst, jnp.array([2.0, 3.0, 1.0])).tolist() == [2, 0, 5]


def test_parallel_by_hand(tiny: Project) -> None:
    inst = to_instance(tiny.arrays())
    assert _parallel(inst, jnp.array([3.0, 2.0, 1.0])).tolist() == [0, 3, 3]
    assert _parallel(inst, jnp.array([2.0, 3.0, 1.0])).tolist() == [2, 0, 5]


def test_forward_backward_repairs_a_bad_order(tiny: Project) -> None:
    inst = to_instance(tiny.arrays())
    improved = _fbi(inst, jnp.array([2, 0, 5], jnp.int32))
    assert improved.tolist() == [0, 3, 3]


def test_keys_reproduce_the_start_order() -> None:
    keys = keys_from_starts(jnp.array([5, 0, 5, 2], jnp.int32))
    assert np.argsort(-np.asarray(keys), kind="stable").tolist() == [1, 3, 0, 2]


@st.composite
def projects(draw: st.DrawFn) -> Project:
    n = draw(st.integers(1, SHAPE[0]))
    caps = draw(st.lists(st.integers(1, 6), min_size=1, max_size=SHAPE[1]))
    acts = []
    for j in range(n):
        preds = draw(st.sets(st.integers(0, j - 1), max_size=3)) if j else set()
        demands = {f"r{k}": draw(st.integers(0, c)) for k, c in enumerate(caps)}
        acts.append(Activity(name=f"a{j}", duration=draw(st.integers(0, 5)), demands=demands,
                             predecessors=tuple(f"a{p}" for p in sorted(preds))))
    res = tuple(Resource(name=f"r{k}", capacity=c) for k, c in enumerate(caps))
    return Project(name="random", resources=res, activities=tuple(acts))


@settings(max_examples=60, deadline=None)
@given(project=projects(), seed=st.integers(0, 2**16))
def test_every_scheme_is_feasible_and_fbi_never_worse(project: Project, seed: int) -> None:
    arr = project.arrays()
    n = arr.durations.shape[0]
    inst = to_instance(arr, SHAPE)
    prio = jax.random.uniform(jax.random.PRNGKey(seed), (SHAPE[0],))
    serial = np.asarray(_serial(inst, prio))[:n]
    parallel = np.asarray(_parallel(inst, prio))[:n]
    ms_serial = check_schedule(arr, serial)
    check_schedule(arr, parallel)
    improved = np.asarray(_fbi(inst, jnp.asarray(np.pad(serial, (0, SHAPE[0] - n)), jnp.int32)))[:n]
    assert check_schedule(arr, improved) <= ms_serial
    # The serial SGS on the keys of a left-justified schedule rebuilds it exactly.
    again = np.asarray(_serial(inst, keys_from_starts(jnp.asarray(np.pad(improved, (0, SHAPE[0] - n)), jnp.int32))))[:n]
    assert again.tolist() == improved.tolist()
