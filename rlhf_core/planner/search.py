"""The search driver: run any algorithm to its schedule budget, as one compiled program.

:func:`solve` is ``init``, ``config.generations()`` ``step`` calls (one ``lax.scan``) and
``best`` of the configured algorithm (:mod:`rlhf_core.planner.algorithm`). It is pure, so
``jax.jit(jax.vmap(lambda inst: solve(inst, config)))`` solves a stack of padded instances of one
family with one compilation; :func:`make_solver` caches the jitted single-instance solver per
configuration. The run's key is ``PRNGKey(config.seed)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

from rlhf_core.errors import PlannerError
from rlhf_core.planner import bpga, ga, qiea
from rlhf_core.planner.algorithm import AnyAlgorithm, SearchResult
from rlhf_core.planner.config import SearchConfig
from rlhf_core.planner.instance import Instance

ALGORITHMS: dict[str, AnyAlgorithm] = {a.name: a for a in (qiea.ALGORITHM, bpga.ALGORITHM, ga.ALGORITHM)}
"""Every algorithm's ``init`` / ``step`` / ``best``, by its ``algorithm`` tag."""


def algorithm_for(config: SearchConfig) -> AnyAlgorithm:
    """The algorithm that ``config.params`` configures.

    Raises:
        PlannerError: no algorithm has that tag (a parameter class without an implementation).
    """
    try:
        return ALGORITHMS[config.algorithm]
    except KeyError:
        raise PlannerError(f"no search algorithm {config.algorithm!r}; known: "
                           f"{', '.join(ALGORITHMS)}") from None


def run_steps(algorithm: AnyAlgorithm, inst: Instance, state: Any, params: Any, steps: int) -> Any:
    """``steps`` (static) calls of ``algorithm.step`` in one ``lax.scan`` (jit the caller)."""
    def body(s: Any, _: None) -> tuple[Any, None]:
        return algorithm.step(inst, s, params), None

    return jax.lax.scan(body, state, None, length=steps)[0] if steps else state


def solve(inst: Instance, config: SearchConfig) -> SearchResult:
    """Run the configured algorithm on one padded instance to its schedule budget (pure).

    Raises:
        PlannerError: the budget does not cover one generation.
    """
    algorithm = algorithm_for(config)
    state = algorithm.init(inst, jax.random.PRNGKey(config.seed), config.params, config.budget)
    state = run_steps(algorithm, inst, state, config.params, config.generations())
    return algorithm.best(state)


@functools.cache
def make_solver(config: SearchConfig) -> Callable[[Instance], SearchResult]:
    """The jitted ``solve(inst) -> SearchResult`` of one configuration (cached per configuration).

    ``jax.jit(jax.vmap(make_solver(config)))`` solves a stack of same-shape instances.

    Raises:
        PlannerError: the budget does not cover one generation.
    """
    config.generations()  # refuse a too-small budget now, not at the first call
    return jax.jit(functools.partial(solve, config=config))
