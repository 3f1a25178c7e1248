"""Project validation: every invalid project raises PlannerError naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_core.errors import PlannerError
from rlhf_core.planner import Activity, Project, Resource
from rlhf_core.planner.model import find_cycle


def _project(*acts: Activity, cap: int = 4) -> Project:
    return Project(name="p", resources=(Resource(name="gpu", capacity=cap),), activities=acts)


def test_cycle_is_named() -> None:
    with pytest.raises(PlannerError, match=r"precedence cycle (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)"):
        _project(
            Activity(name="a", duration=1, predecessors=("c",)),
            Activity(name="b", duration=1, predecessors=("a",)),
            Activity(name="c", duration=1, predecessors=("b",)),
            Activity(name="d", duration=1),
        )


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(PlannerError, match=r"cycle x -> x"):
        _project(Activity(name="x", duration=1, predecessors=("x",)))


def test_find_cycle_returns_none_on_a_dag() -> None:
    assert find_cycle(["a", "b", "c"], {"a": (), "b": ("a",), "c": ("a", "b")}) is None
    cyc = find_cycle(["a", "b", "c"], {"a": ("b",), "b": ("a",), "c": ()})
    assert cyc is not None and cyc[0] == cyc[-1] and set(cyc) == {"a", "b"}


@pytest.mark.parametrize(
    ("acts", "message"),
    [
        ((Activity(name="a", duration=-1),), r"activity 'a' has negative duration -1"),
        ((Activity(name="a", duration=1, predecessors=("zz",)),), r"unknown activity 'zz'"),
        ((Activity(name="a", duration=1, demands={"tpu": 1}),), r"unknown resource 'tpu' \(declared: gpu\)"),
        ((Activity(name="a", duration=1, demands={"gpu": 9}),), r"needs 9 'gpu' but the capacity is 4"),
        ((Activity(name="a", duration=1), Activity(name="a", duration=2)), r"'a' is declared twice"),
    ],
)
def test_invalid_projects(acts: tuple[Activity, ...], message: str) -> None:
    with pytest.raises(PlannerError, match=message):
        _project(*acts)


def test_arrays(tiny: Project) -> None:
    arr = tiny.arrays()
    assert arr.durations.tolist() == [3, 2, 2]
    assert arr.demands[:, 0].tolist() == [2, 2, 1]
    assert arr.capacities.tolist() == [3]
    assert np.argwhere(arr.pred).tolist() == [[2, 0]]
