"""The RCPSP model: activities, durations, precedences and renewable resources.

A :class:`Project` is validated on construction; every problem raises
:class:`~rlhf_core.errors.PlannerError` with a one-line message naming the activity, resource or
cycle at fault. :meth:`Project.arrays` turns a valid project into dense NumPy arrays that the
search code consumes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf_core.errors import PlannerError


class Resource(BaseModel):
    """A renewable resource (GPUs, annotators, reviewers, ``R 1`` ...) with a per-period capacity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    capacity: int


class Activity(BaseModel):
    """One activity: a duration, per-period resource demands and the activities it waits for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    duration: int
    demands: dict[str, int] = Field(default_factory=dict)
    predecessors: tuple[str, ...] = ()
    kind: str = "task"


class ProjectArrays(NamedTuple):
    """Dense arrays of a project (activity order = ``Project.activities`` order).

    Attributes:
        durations: ``int32[n]``.
        demands: ``int32[n, k]`` per-period demand of each activity on each resource.
        capacities: ``int32[k]``.
        pred: ``bool[n, n]``; ``pred[j, i]`` is True when ``i`` must finish before ``j`` starts.
    """

    durations: np.ndarray
    demands: np.ndarray
    capacities: np.ndarray
    pred: np.ndarray


def find_cycle(names: list[str], preds: dict[str, tuple[str, ...]]) -> list[str] | None:
    """Return one precedence cycle as ``[a, b, ..., a]`` or None when the graph is acyclic."""
    state: dict[str, int] = {}
    for root in names:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, idx = stack.pop()
            if idx == 0:
                state[node] = 1
                path.append(node)
            nxt = preds[node]
            if idx < len(nxt):
                stack.append((node, idx + 1))
                child = nxt[idx]
                if state.get(child) == 1:
                    cycle = path[path.index(child) :] + [child]
                    return list(reversed(cycle))
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return None


class Project(BaseModel):
    """A resource-constrained project (one RCPSP instance).

    Raises:
        PlannerError: on duplicate names, negative durations or capacities, unknown activities
            or resources, a demand above a capacity, or a precedence cycle (named).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    resources: tuple[Resource, ...]
    activities: tuple[Activity, ...]
    source: str = "<memory>"

    @model_validator(mode="after")
    def _check(self) -> Project:
        where = f"{self.source}: project {self.name!r}"
        if not self.activities:
            raise PlannerError(f"{where}: has no activities; add at least one")
        res_cap: dict[str, int] = {}
        for res in self.resources:
            if res.name in res_cap:
                raise PlannerError(f"{where}: resource {res.name!r} is declared twice")
            if res.capacity < 0:
                raise PlannerError(
                    f"{where}: resource {res.name!r} has negative capacity {res.capacity}"
                )
            res_cap[res.name] = res.capacity
        seen: set[str] = set()
        for act in self.activities:
            if act.name in seen:
                raise PlannerError(f"{where}: activity {act.name!r} is declared twice")
            seen.add(act.name)
        for act in self.activities:
            if act.duration < 0:
                raise PlannerError(
                    f"{where}: activity {act.name!r} has negative duration {act.duration}; "
                    "durations must be >= 0"
                )
            for pred in act.predecessors:
                if pred not in seen:
                    raise PlannerError(
                        f"{where}: activity {act.name!r} depends on unknown activity {pred!r}"
                    )
            for res_name, amount in act.demands.items():
                if res_name not in res_cap:
                    known = ", ".join(sorted(res_cap)) or "none"
                    raise PlannerError(
                        f"{where}: activity {act.name!r} needs unknown resource {res_name!r} "
                        f"(declared: {known})"
                    )
                if amount < 0:
                    raise PlannerError(
                        f"{where}: activity {act.name!r} has negative demand {amount} "
                        f"on {res_name!r}"
                    )
                if amount > res_cap[res_name]:
                    raise PlannerError(
                        f"{where}: activity {act.name!r} needs {amount} {res_name!r} but the "
                        f"capacity is {res_cap[res_name]}; lower the demand or raise the capacity"
                    )
        cycle = find_cycle(
            [a.name for a in self.activities], {a.name: a.predecessors for a in self.activities}
        )
        if cycle is not None:
            raise PlannerError(
                f"{where}: precedence cycle {' -> '.join(cycle)}; remove one of these dependencies"
            )
        return self

    @property
    def n_activities(self) -> int:
        """Number of activities."""
        return len(self.activities)

    def index(self) -> dict[str, int]:
        """Activity name -> position."""
        return {a.name: i for i, a in enumerate(self.activities)}

    def arrays(self) -> ProjectArrays:
        """Dense NumPy arrays of this project (see :class:`ProjectArrays`)."""
        idx = self.index()
        ridx = {r.name: k for k, r in enumerate(self.resources)}
        n, k = len(self.activities), len(self.resources)
        durations = np.array([a.duration for a in self.activities], dtype=np.int32)
        demands = np.zeros((n, k), dtype=np.int32)
        pred = np.zeros((n, n), dtype=bool)
        for j, act in enumerate(self.activities):
            for res_name, amount in act.demands.items():
                demands[j, ridx[res_name]] = amount
            for p in act.predecessors:
                pred[j, idx[p]] = True
        capacities = np.array([r.capacity for r in self.resources], dtype=np.int32)
        return ProjectArrays(durations, demands, capacities, pred)
