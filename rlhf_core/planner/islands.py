"""QIEA islands one at a time, for callers that run islands on separate workers.

The compiled driver (:func:`rlhf_core.planner.search.solve`) and these functions use the same
island keys (:func:`island_key`), generation counts (:func:`epoch_lengths`) and ring migration,
so both paths find the same schedule for the same seed. An island's state carries its key and the
run's length, so advancing it needs only the state and the epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlhf_core.errors import PlannerError
from rlhf_core.planner.algorithm import SearchResult
from rlhf_core.planner.config import SearchConfig
from rlhf_core.planner.instance import Instance
from rlhf_core.planner.params import QIEAParams
from rlhf_core.planner.qiea import IslandState, init_island, migrate, run_island


def _qiea(config: SearchConfig) -> QIEAParams:
    if not isinstance(config.params, QIEAParams):
        raise PlannerError(f"islands are a QIEA feature; algorithm {config.algorithm!r} runs as one population")
    return config.params


def island_count(config: SearchConfig) -> int:
    """Islands that can run on separate workers: the QIEA's islands, else 1 (one population)."""
    return config.params.islands if isinstance(config.params, QIEAParams) else 1


def island_key(seed: int, island: int) -> jnp.ndarray:
    """The PRNG key of one island (generation ``g`` folds ``g`` into it)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), island)


def epoch_lengths(config: SearchConfig) -> list[int]:
    """Generations per epoch; islands migrate after each epoch.

    Raises:
        PlannerError: not a QIEA configuration, or a budget below one generation.
    """
    interval = _qiea(config).migration_interval
    full, rem = divmod(config.generations(), interval)
    return [interval] * full + ([rem] if rem else [])


@functools.cache
def _run_fn(params: QIEAParams, generations: int) -> Callable[[Instance, IslandState], IslandState]:
    return jax.jit(lambda inst, st: run_island(inst, st, params, generations))


def start_island(inst: Instance, config: SearchConfig, island: int) -> IslandState:
    """The blank state of island ``island`` (its first epoch evaluates it).

    Raises:
        PlannerError: not a QIEA configuration, or a budget below one generation.
    """
    params = _qiea(config)
    return init_island(inst, island_key(config.seed, island), params, config.generations())


def advance_island(inst: Instance, config: SearchConfig, state: IslandState, epoch: int) -> IslandState:
    """Run one island through epoch ``epoch`` (1-based; see :func:`epoch_lengths`).

    Raises:
        PlannerError: not a QIEA configuration, or no such epoch for this budget.
    """
    lengths = epoch_lengths(config)
    if not 1 <= epoch <= len(lengths):
        raise PlannerError(f"epoch {epoch} is outside 1..{len(lengths)} for budget {config.budget}")
    return _run_fn(_qiea(config), lengths[epoch - 1])(inst, state)


def migrate_islands(states: Sequence[IslandState]) -> list[IslandState]:
    """Ring migration between separately stored islands (see :func:`rlhf_core.planner.qiea.migrate`)."""
    stacked = IslandState(*(jnp.stack(parts) for parts in zip(*states, strict=True)))
    moved = migrate(stacked)
    return [IslandState(*(part[i] for part in moved)) for i in range(len(states))]


def best_of(states: Sequence[IslandState]) -> SearchResult:
    """The best schedule over islands (first island wins ties) and the total schedule count."""
    ms = [int(s.best_ms) for s in states]
    i = int(np.argmin(ms))
    total = int(sum(int(s.schedules) for s in states))
    return SearchResult(states[i].best_starts, states[i].best_ms, jnp.int32(total))
