"""Small hand-checked projects shared by the planner tests."""

from __future__ import annotations

import pytest

from rlhf_core.planner import Activity, Project, Resource


@pytest.fixture()
def tiny() -> Project:
    """A (d=3, r=2), B (d=2, r=2), C (d=2, r=1, after A); capacity 3.

    Hand-checked: the optimum is 5 (A, then B and C together); B first gives 7 with an SGS.
    """
    return Project(
        name="tiny",
        resources=(Resource(name="gpu", capacity=3),),
        activities=(
            Activity(name="A", duration=3, demands={"gpu": 2}),
            Activity(name="B", duration=2, demands={"gpu": 2}),
            Activity(name="C", duration=2, demands={"gpu": 1}, predecessors=("A",)),
        ),
    )
