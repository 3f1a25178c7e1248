"""Turn a population of priority vectors into schedules and makespans (SGS + justification).

Counting follows the literature: every scheme pass (forward, backward or justification) is one
schedule; :func:`rlhf_core.planner.params.evaluation_cost` gives the schedules one evaluation of a
population generates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlhf_core.planner.instance import Instance
from rlhf_core.planner.params import DecodeName, SGSName
from rlhf_core.planner.sgs import (
    forward_backward,
    keys_from_starts,
    makespan,
    mixed_passes,
    parallel_sgs,
    serial_sgs,
)


def evaluate_population(
    inst: Instance, prio: jnp.ndarray, sgs: SGSName, fbi: bool, decode: DecodeName = "backward",
    n_parallel: int = 0,
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Schedules and makespans of a population.

    Args:
        inst: A single padded instance.
        prio: ``float32[P, N]`` priorities.
        sgs: The generation scheme.
        fbi: Justify every schedule (forward-backward improvement).
        decode: With ``fbi``, ``"backward"`` reads the priorities as a right-to-left order: the
            scheme builds a right-justified schedule on the reversed network and one forward pass
            left-justifies it; ``"forward"`` builds left to right, then justifies backward and
            forward (Valls et al. 2005).
        n_parallel: With ``fbi`` and ``"backward"`` decoding, the last ``n_parallel`` rows build
            their right-justified schedule with the parallel SGS (non-delay) instead of ``sgs``;
            the forward justification stays serial. Each row still costs the same schedules.

    Raises:
        ValueError: ``n_parallel`` with a decoding it does not apply to.

    Returns:
        ``(starts int32[P, N], makespans int32[P], keys float32[P, N])``: ``keys`` re-encode each
        schedule in the population's representation (decoding them again gives the same
        makespan or a shorter one).
    """
    if n_parallel and not (fbi and decode == "backward"):
        raise ValueError(f"n_parallel={n_parallel} needs fbi=True and decode='backward'")
    scheme = serial_sgs if sgs == "serial" else parallel_sgs
    dur = inst.dur[None, :]
    if fbi and decode == "backward":
        right = mixed_passes(inst, prio, True, n_parallel, scheme)
        starts = jax.vmap(lambda r: serial_sgs(inst, -r.astype(jnp.float32)))(right)
        keys = jax.vmap(keys_from_starts)(-(starts + dur))
    else:
        starts = jax.vmap(lambda q: scheme(inst, q))(prio)
        if fbi:
            starts = jax.vmap(lambda s: forward_backward(inst, s))(starts)
        keys = jax.vmap(keys_from_starts)(starts)
    return starts, jax.vmap(lambda s: makespan(inst, s))(starts), keys
