"""One island at a time, for callers that fan islands out to separate workers.

The compiled in-process solver (:func:`~rlhf_core.planner.search.make_solver`) and these
functions use the same keys (:func:`~rlhf_core.planner.search.island_key`), generation counts
(:func:`~rlhf_core.planner.search.epoch_lengths`) and migration, so both paths find the same
schedule for the same seed. Island states convert to and from plain NumPy dicts for storage.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlhf_core.errors import PlannerError
from rlhf_core.planner.instance import Instance
from rlhf_core.planner.qiea import IslandState, init_island, migrate, run_island
from rlhf_core.planner.search import SearchConfig, SearchResult, epoch_lengths, island_key


def _check(config: SearchConfig) -> None:
    if config.algorithm != "qiea":
        raise PlannerError(f"islands are a QIEA feature; algorithm {config.algorithm!r} runs as one population")


@functools.cache
def _run_fn(config: SearchConfig, generations: int) -> object:
    total = config.generations()
    return jax.jit(
        lambda inst, st, key: run_island(inst, st, key, config.qiea_params(), generations, total)
    )


def start_island(inst: Instance, config: SearchConfig, island: int) -> IslandState:
    """The blank state of island ``island`` (its first epoch evaluates it)."""
    _check(config)
    del island  # every island starts from the same uniform Q-bits; keys differ per island
    return init_island(inst, config.qiea_params())


def advance_island(inst: Instance, config: SearchConfig, state: IslandState, island: int, epoch: int) -> IslandState:
    """Run island ``island`` through epoch ``epoch`` (1-based; see ``epoch_lengths``)."""
    _check(config)
    lengths = epoch_lengths(config)
    if not 1 <= epoch <= len(lengths):
        raise PlannerError(f"epoch {epoch} is outside 1..{len(lengths)} for budget {config.budget}")
    return _run_fn(config, lengths[epoch - 1])(inst, state, island_key(config.seed, island))


def migrate_islands(states: Sequence[IslandState]) -> list[IslandState]:
    """Ring migration between separately stored islands (see :func:`qiea.migrate`)."""
    stacked = IslandState(*(jnp.stack(parts) for parts in zip(*states, strict=True)))
    moved = migrate(stacked)
    return [IslandState(*(part[i] for part in moved)) for i in range(len(states))]


def best_of(states: Sequence[IslandState]) -> SearchResult:
    """The best schedule over islands (first island wins ties) and the total schedule count."""
    ms = [int(s.best_ms) for s in states]
    i = int(np.argmin(ms))
    total = int(sum(int(s.schedules) for s in states))
    return SearchResult(states[i].best_starts, states[i].best_ms, jnp.int32(total))


def state_to_numpy(state: IslandState) -> dict[str, np.ndarray]:
    """An island state as named NumPy arrays (for ``np.savez``)."""
    return {name: np.asarray(value) for name, value in state._asdict().items()}


def state_from_numpy(arrays: dict[str, np.ndarray]) -> IslandState:
    """Inverse of :func:`state_to_numpy`.

    Raises:
        PlannerError: a field is missing.
    """
    missing = [f for f in IslandState._fields if f not in arrays]
    if missing:
        raise PlannerError(f"island state lacks fields {missing}; the file is not an island state")
    return IslandState(*(jnp.asarray(arrays[f]) for f in IslandState._fields))
