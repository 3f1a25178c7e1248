"""Critical path, lower bounds and the independent checker on hand-checked projects."""

from __future__ import annotations

import numpy as np

from rlhf_core.planner import (
    Project,
    check_schedule,
    critical_path,
    lower_bound,
    resource_bound,
    schedule_violations,
)


def test_critical_path_by_hand(tiny: Project) -> None:
    cp = critical_path(tiny.arrays())
    assert cp.es.tolist() == [0, 0, 3]
    assert cp.ef.tolist() == [3, 2, 5]
    assert cp.lf.tolist() == [3, 5, 5]
    assert cp.ls.tolist() == [0, 3, 3]
    assert cp.length == 5
    assert cp.critical.tolist() == [True, False, True]


def test_critical_path_with_deadline(tiny: Project) -> None:
    cp = critical_path(tiny.arrays(), deadline=7)
    assert cp.lf.tolist() == [5, 7, 7] and not cp.critical.any()


def test_resource_bound(tiny: Project) -> None:
    # energy 3*2 + 2*2 + 2*1 = 12 on capacity 3 -> 4; the critical path (5) dominates.
    assert resource_bound(tiny.arrays()) == 4
    assert lower_bound(tiny.arrays()) == 5


def test_checker_accepts_the_optimum(tiny: Project) -> None:
    assert check_schedule(tiny.arrays(), np.array([0, 3, 3])) == 5


def test_checker_finds_each_kind_of_violation(tiny: Project) -> None:
    arr = tiny.arrays()
    prec = schedule_violations(arr, np.array([0, 3, 2]))
    assert prec == ["activity 2 starts at 2 before predecessor 0 ends at 3"]
    cap = schedule_violations(arr, np.array([0, 0, 3]))
    assert cap and all("resource 0 uses 4 > capacity 3" in v for v in cap) and len(cap) == 2
    assert "negative time" in schedule_violations(arr, np.array([-1, 3, 3]))[0]
    assert "expected 3 start times" in schedule_violations(arr, np.array([0, 3]))[0]
