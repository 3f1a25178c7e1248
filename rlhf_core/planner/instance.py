"""Padded JAX instance arrays, so instances of one family share one compilation.

Padding adds zero-duration, zero-demand activities without precedences and zero-capacity
resources, which changes neither feasibility nor the makespan. The time grid length ``T`` is at
least the sum of durations, the makespan of any serial or parallel SGS schedule never exceeds it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from rlhf_core.planner.model import ProjectArrays


class Instance(NamedTuple):
    """One (padded) instance as JAX arrays; a leading batch axis may be added with :func:`stack`.

    Attributes:
        dur: ``int32[N]`` durations.
        req: ``int32[N, K]`` per-period demands.
        cap: ``int32[K]`` capacities.
        pred: ``bool[N, N]``; ``pred[j, i]``: i must finish before j starts.
        tgrid: ``int32[T]`` = ``arange(T)``; its length fixes the time horizon statically.
    """

    dur: jnp.ndarray
    req: jnp.ndarray
    cap: jnp.ndarray
    pred: jnp.ndarray
    tgrid: jnp.ndarray


def padded_shape(arrays_list: list[ProjectArrays]) -> tuple[int, int, int]:
    """Common ``(N, K, T)`` for a family of instances (``T`` = max sum of durations + 1)."""
    n = max(a.durations.shape[0] for a in arrays_list)
    k = max(a.capacities.shape[0] for a in arrays_list)
    t = max(int(a.durations.sum()) for a in arrays_list) + 1
    return n, max(k, 1), t


def to_instance(arrays: ProjectArrays, shape: tuple[int, int, int] | None = None) -> Instance:
    """Pad one project to ``shape = (N, K, T)`` (default: its own size)."""
    n0, k0 = arrays.demands.shape
    n, k, t = shape or padded_shape([arrays])
    dur = np.zeros(n, np.int32)
    dur[:n0] = arrays.durations
    req = np.zeros((n, k), np.int32)
    req[:n0, :k0] = arrays.demands
    cap = np.zeros(k, np.int32)
    cap[:k0] = arrays.capacities
    pred = np.zeros((n, n), bool)
    pred[:n0, :n0] = arrays.pred
    return Instance(
        jnp.asarray(dur), jnp.asarray(req), jnp.asarray(cap), jnp.asarray(pred),
        jnp.arange(t, dtype=jnp.int32),
    )


def reverse(inst: Instance) -> Instance:
    """The same instance with every precedence reversed (for backward passes)."""
    return inst._replace(pred=jnp.swapaxes(inst.pred, -1, -2))


def stack(instances: list[Instance]) -> Instance:
    """Stack same-shape instances along a new leading axis (for ``vmap`` over instances)."""
    return Instance(*(jnp.stack(parts) for parts in zip(*instances, strict=True)))
