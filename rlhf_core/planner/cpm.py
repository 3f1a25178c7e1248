"""Critical-path analysis and makespan lower bounds of a project.

References:
    Kelley, J. E. & Walker, M. R. (1959). Critical-path planning and scheduling.
    Kolisch, R. & Hartmann, S. (2006). Experimental investigation of heuristics for
    resource-constrained project scheduling: An update. EJOR 174(1), 23-37 (the critical-path
    lower bound used for j60 deviations).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rlhf_core.planner.model import ProjectArrays


class CriticalPath(NamedTuple):
    """Earliest/latest start and finish times (``int[n]``) ignoring resources.

    Attributes:
        es, ef, ls, lf: ``int64[n]``; ``lf`` uses the critical-path length as the deadline.
        length: The critical-path length (the precedence-only lower bound).
        critical: ``bool[n]``, zero total float.
    """

    es: np.ndarray
    ef: np.ndarray
    ls: np.ndarray
    lf: np.ndarray
    length: int
    critical: np.ndarray


def topological_order(pred: np.ndarray) -> list[int]:
    """A topological order of ``pred`` (``pred[j, i]``: i before j); the graph must be acyclic."""
    n = pred.shape[0]
    indeg = pred.sum(axis=1).astype(int)
    ready = [j for j in range(n) if indeg[j] == 0]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(pred[:, i]):
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(int(j))
    return order


def critical_path(arrays: ProjectArrays, deadline: int | None = None) -> CriticalPath:
    """Forward and backward passes of the critical-path method.

    Args:
        arrays: The project arrays.
        deadline: The project deadline for the backward pass (default: the critical-path length).

    Returns:
        The :class:`CriticalPath`.
    """
    dur = arrays.durations.astype(np.int64)
    pred = arrays.pred
    order = topological_order(pred)
    n = len(dur)
    es = np.zeros(n, dtype=np.int64)
    for j in order:
        ps = np.flatnonzero(pred[j])
        if ps.size:
            es[j] = int((es[ps] + dur[ps]).max())
    ef = es + dur
    length = int(ef.max()) if n else 0
    horizon = length if deadline is None else int(deadline)
    lf = np.full(n, horizon, dtype=np.int64)
    for i in reversed(order):
        ss = np.flatnonzero(pred[:, i])
        if ss.size:
            lf[i] = int((lf[ss] - dur[ss]).min())
    ls = lf - dur
    return CriticalPath(es, ef, ls, lf, length, (ls - es) == 0)


def resource_bound(arrays: ProjectArrays) -> int:
    """Energy lower bound: ``max_k ceil(sum_j d_j r_jk / c_k)`` over resources with capacity."""
    best = 0
    for k, cap in enumerate(arrays.capacities):
        if cap > 0:
            work = int((arrays.durations.astype(np.int64) * arrays.demands[:, k]).sum())
            best = max(best, -(-work // int(cap)))
    return best


def lower_bound(arrays: ProjectArrays) -> int:
    """The larger of the critical-path bound and the resource (energy) bound."""
    return max(critical_path(arrays).length, resource_bound(arrays))
