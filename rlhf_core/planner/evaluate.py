"""Turn a population of priority vectors into schedules and makespans (SGS + justification).

Counting follows the literature: one SGS call is one schedule; forward-backward improvement adds
two, so an evaluation costs :func:`schedules_per_individual` schedules per individual.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from rlhf_core.planner.instance import Instance
from rlhf_core.planner.sgs import forward_backward, makespan, parallel_sgs, serial_sgs

SGSName = Literal["serial", "parallel"]


def schedules_per_individual(fbi: bool) -> int:
    """Schedules generated per evaluated individual (1, or 3 with forward-backward improvement)."""
    return 3 if fbi else 1


def evaluate_population(
    inst: Instance, prio: jnp.ndarray, sgs: SGSName, fbi: bool
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Schedules and makespans of a population.

    Args:
        inst: A single padded instance.
        prio: ``float32[P, N]`` priorities.
        sgs: The generation scheme.
        fbi: Apply forward-backward improvement to every schedule.

    Returns:
        ``(starts int32[P, N], makespans int32[P])``.
    """
    scheme = serial_sgs if sgs == "serial" else parallel_sgs
    starts = jax.vmap(lambda p: scheme(inst, p))(prio)
    if fbi:
        starts = jax.vmap(lambda s: forward_backward(inst, s))(starts)
    return starts, jax.vmap(lambda s: makespan(inst, s))(starts)
