"""Search states in the lake, so islands can run as separate tasks without moving arrays.

A state (any ``NamedTuple`` of arrays, e.g. :class:`~rlhf_core.planner.qiea.IslandState`) is
stored as an ``.npz`` file under ``work/plans/<run_id>/`` of the lake root, written atomically;
orchestration passes only the relative paths. The ``*_stored_*`` functions are the island steps a
worker runs: read the project and the state, advance, write, return the new path.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from rlhf_core.errors import PlannerError
from rlhf_core.lake.store import Lake
from rlhf_core.planner.config import SearchConfig
from rlhf_core.planner.instance import to_instance
from rlhf_core.planner.islands import advance_island, migrate_islands, start_island
from rlhf_core.planner.qiea import IslandState
from rlhf_core.planner.source import PlanSource


def state_to_numpy(state: NamedTuple) -> dict[str, np.ndarray]:
    """A state as named NumPy arrays (for ``np.savez``)."""
    return {name: np.asarray(value) for name, value in state._asdict().items()}


def state_from_numpy(arrays: dict[str, np.ndarray]) -> IslandState:
    """Inverse of :func:`state_to_numpy` for an island state.

    Raises:
        PlannerError: a field is missing.
    """
    missing = [f for f in IslandState._fields if f not in arrays]
    if missing:
        raise PlannerError(f"island state lacks fields {missing}; the file is not an island state")
    return IslandState(*(jnp.asarray(arrays[f]) for f in IslandState._fields))


def work_dir(run_id: str) -> str:
    """The run's directory of stored states, relative to the lake root."""
    return f"work/plans/{run_id}"


def island_path(run_id: str, island: int, epoch: int, migrated: bool = False) -> str:
    """Where island ``island`` is stored after epoch ``epoch`` (0: its blank state)."""
    suffix = "-migrated" if migrated else ""
    return f"{work_dir(run_id)}/island-{island:02d}-epoch-{epoch:04d}{suffix}.npz"


def save_state(lake: Lake, relpath: str, state: NamedTuple) -> str:
    """Write ``state`` atomically to ``relpath``; returns ``relpath``."""
    buf = io.BytesIO()
    np.savez(buf, **state_to_numpy(state))
    lake.write_file_atomic(relpath, buf.getvalue())
    return relpath


def load_island(lake: Lake, relpath: str) -> IslandState:
    """Read an island state written by :func:`save_state`.

    Raises:
        PlannerError: the file is not an island state.
    """
    with lake.fs.open_input_file(lake.path(relpath)) as fh:
        data = fh.read()
    with np.load(io.BytesIO(data)) as npz:
        return state_from_numpy({name: npz[name] for name in npz.files})


def start_stored_island(source: PlanSource, config: SearchConfig, island: int, run_id: str,
                        lake_root: str) -> str:
    """Store island ``island``'s blank state (epoch 0); returns its path."""
    state = start_island(to_instance(source.load().arrays()), config, island)
    return save_state(Lake(lake_root), island_path(run_id, island, 0), state)


def advance_stored_island(source: PlanSource, config: SearchConfig, island: int, epoch: int,
                          state_path: str, run_id: str, lake_root: str) -> str:
    """Run a stored island through epoch ``epoch`` and store the result; returns its path."""
    lake = Lake(lake_root)
    inst = to_instance(source.load().arrays())
    state = advance_island(inst, config, load_island(lake, state_path), epoch)
    return save_state(lake, island_path(run_id, island, epoch), state)


def migrate_stored_islands(state_paths: Sequence[str], epoch: int, run_id: str,
                           lake_root: str) -> list[str]:
    """Ring-migrate stored islands; stores and returns the migrated states' paths."""
    lake = Lake(lake_root)
    moved = migrate_islands([load_island(lake, p) for p in state_paths])
    return [save_state(lake, island_path(run_id, i, epoch, migrated=True), s) for i, s in enumerate(moved)]


def discard_states(lake_root: str, run_id: str) -> None:
    """Remove the run's stored states (once its plan is published)."""
    lake = Lake(lake_root)
    lake.fs.delete_dir(lake.path(work_dir(run_id)))
