"""The interface every search algorithm implements, in the ask/tell style of evosax.

An algorithm is three pure functions over its own state (a ``NamedTuple`` of JAX arrays):

* ``init(inst, key, params, budget) -> state``: the state before the first generation. ``budget``
  (static) is the run's schedule budget; the state records what the algorithm derives from it
  (the length of annealing schedules), so ``step`` needs nothing else.
* ``step(inst, state, params) -> state``: one generation. Its randomness comes from the key
  kept in the state and the generation counter, so a run split into several calls (epochs,
  workers) finds the same schedule as one call.
* ``best(state) -> SearchResult``: the best schedule so far, its makespan and the schedules
  generated.

``params.generations(budget)`` says how many ``step`` calls fit in the budget after ``init``;
:func:`rlhf_core.planner.search.solve` runs any algorithm that way. States may carry leading
batch axes (``jax.vmap`` over instances), so none of the three may branch on traced values in
Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import jax.numpy as jnp

from rlhf_core.planner.instance import Instance


class SearchResult(NamedTuple):
    """Best schedule ``int32[N]``, its makespan and the schedules generated (``int32``)."""

    starts: jnp.ndarray
    makespan: jnp.ndarray
    schedules: jnp.ndarray


P = TypeVar("P")
S = TypeVar("S")


@dataclass(frozen=True)
class Algorithm(Generic[P, S]):
    """One search algorithm's ``init`` / ``step`` / ``best`` (see the module docstring).

    Attributes:
        name: The ``algorithm`` tag of its parameter class.
        init: ``(inst, key, params, budget) -> state``.
        step: ``(inst, state, params) -> state``, one generation.
        best: ``(state) -> SearchResult``.
    """

    name: str
    init: Callable[[Instance, jnp.ndarray, P, int], S]
    step: Callable[[Instance, S, P], S]
    best: Callable[[S], SearchResult]


AnyAlgorithm = Algorithm[Any, Any]
