"""An independent schedule checker (plain NumPy, no JAX): precedences and capacities.

It shares no code with the schedule-generation schemes, so tests can apply it to every schedule
the search returns.
"""

from __future__ import annotations

import numpy as np

from rlhf_core.errors import PlannerError
from rlhf_core.planner.model import ProjectArrays


def schedule_violations(arrays: ProjectArrays, starts: np.ndarray, limit: int = 10) -> list[str]:
    """List what is wrong with a schedule (empty when it is feasible).

    Args:
        arrays: The project arrays.
        starts: ``int[n]`` start time of every activity.
        limit: Stop after this many violations.

    Returns:
        Human-readable violations (activity indices are 0-based positions).
    """
    starts = np.asarray(starts, dtype=np.int64)
    dur = arrays.durations.astype(np.int64)
    n = dur.shape[0]
    out: list[str] = []
    if starts.shape != (n,):
        return [f"expected {n} start times, got shape {starts.shape}"]
    for j in np.flatnonzero(starts < 0):
        out.append(f"activity {j} starts at negative time {starts[j]}")
    finish = starts + dur
    for j in range(n):
        for i in np.flatnonzero(arrays.pred[j]):
            if starts[j] < finish[i]:
                out.append(f"activity {j} starts at {starts[j]} before predecessor {i} ends at {finish[i]}")
                if len(out) >= limit:
                    return out
    horizon = int(finish.max()) if n else 0
    usage = np.zeros((max(horizon, 1), arrays.capacities.shape[0]), dtype=np.int64)
    for j in range(n):
        if dur[j] > 0 and starts[j] >= 0:
            usage[starts[j] : finish[j]] += arrays.demands[j]
    over = np.argwhere(usage > arrays.capacities[None, :])
    for t, k in over[: max(0, limit - len(out))]:
        out.append(f"resource {k} uses {usage[t, k]} > capacity {arrays.capacities[k]} at t={t}")
    return out


def check_schedule(arrays: ProjectArrays, starts: np.ndarray, where: str = "schedule") -> int:
    """Raise if the schedule is infeasible; return its makespan.

    Raises:
        PlannerError: naming the first violations.
    """
    bad = schedule_violations(arrays, starts)
    if bad:
        raise PlannerError(f"{where} is infeasible: {'; '.join(bad[:3])}")
    return int((np.asarray(starts) + arrays.durations).max())
