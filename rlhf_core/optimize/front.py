"""Pareto-front geometry (maximisation): non-dominated filter, hypervolume, knee point.

Hypervolume is exact in 2 objectives (sweep) and 3 objectives (slicing along the third
objective, exact 2-D sweeps per slice); beyond 3 it is a Monte Carlo estimate reported with its
standard error.

References:
    While et al., "A faster algorithm for calculating hypervolume", IEEE TEVC 2006 (slicing).
    Das, "On characterizing the 'knee' of the Pareto curve based on NBI", 1999.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def non_dominated(points: jax.Array) -> jax.Array:
    """Boolean mask ``[N]`` of points no other point dominates (``>=`` everywhere, ``>`` once).

    Duplicated points are all kept. ``O(N² S)`` in one fused comparison.
    """
    ge = jnp.all(points[:, None, :] >= points[None, :, :], axis=-1)
    gt = jnp.any(points[:, None, :] > points[None, :, :], axis=-1)
    dominated_by = ge & gt  # [i, j]: i dominates j
    return ~jnp.any(dominated_by, axis=0)


class Hypervolume(NamedTuple):
    """Hypervolume value, its standard error (0 when exact) and whether it is exact."""

    value: float
    stderr: float
    exact: bool


def _hv2(points: np.ndarray, ref: np.ndarray) -> float:
    pts = points[np.all(points > ref, axis=1)]
    if pts.size == 0:
        return 0.0
    pts = pts[np.argsort(-pts[:, 0], kind="stable")]
    total, best_y = 0.0, ref[1]
    for x, y in pts:
        if y > best_y:
            total += (x - ref[0]) * (y - best_y)
            best_y = y
    return float(total)


def _hv3(points: np.ndarray, ref: np.ndarray) -> float:
    pts = points[np.all(points > ref, axis=1)]
    if pts.size == 0:
        return 0.0
    levels = np.unique(pts[:, 2])[::-1]
    total = 0.0
    for i, z in enumerate(levels):
        below = levels[i + 1] if i + 1 < len(levels) else ref[2]
        total += _hv2(pts[pts[:, 2] >= z][:, :2], ref[:2]) * (z - below)
    return float(total)


def hypervolume(
    points: np.ndarray | jax.Array,
    ref: np.ndarray | jax.Array,
    key: jax.Array | None = None,
    n_samples: int = 200_000,
) -> Hypervolume:
    """Volume dominated by ``points`` and bounded below by ``ref`` (maximisation).

    Args:
        points: ``[N, S]`` objective vectors.
        ref: ``[S]`` reference point (worse than the front in every objective).
        key: PRNG key for the Monte Carlo estimate (needed when ``S > 3``).
        n_samples: Monte Carlo samples.

    Returns:
        :class:`Hypervolume`.

    Raises:
        ValueError: If ``S > 3`` and no key is given.
    """
    pts = np.asarray(points, np.float64)
    r = np.asarray(ref, np.float64)
    if pts.shape[1] == 1:
        return Hypervolume(float(max(0.0, pts[:, 0].max() - r[0])), 0.0, True)
    if pts.shape[1] == 2:
        return Hypervolume(_hv2(pts, r), 0.0, True)
    if pts.shape[1] == 3:
        return Hypervolume(_hv3(pts, r), 0.0, True)
    if key is None:
        raise ValueError(f"hypervolume in {pts.shape[1]} objectives is Monte Carlo: pass a PRNG key")
    upper = pts.max(axis=0)
    box = float(np.prod(np.maximum(upper - r, 0.0)))
    frac = float(_mc_fraction(key, jnp.asarray(pts, jnp.float32), jnp.asarray(r, jnp.float32),
                              jnp.asarray(upper, jnp.float32), n_samples))
    return Hypervolume(box * frac, box * float(np.sqrt(frac * (1 - frac) / n_samples)), False)


def _mc_fraction(key: jax.Array, pts: jax.Array, ref: jax.Array, upper: jax.Array, n: int) -> jax.Array:
    chunk = 4096
    n_chunks = -(-n // chunk)

    def body(i: jax.Array, acc: jax.Array) -> jax.Array:
        u = jax.random.uniform(jax.random.fold_in(key, i), (chunk, pts.shape[1]))
        x = ref + u * (upper - ref)
        hit = jnp.any(jnp.all(pts[None, :, :] >= x[:, None, :], axis=-1), axis=1)
        valid = i * chunk + jnp.arange(chunk) < n
        return acc + jnp.sum(hit & valid)

    return jax.lax.fori_loop(0, n_chunks, body, jnp.int32(0)) / n


def knee_point(front: np.ndarray | jax.Array) -> int:
    """Index of the knee: the front point farthest beyond the hyperplane through the extremes.

    Objectives are normalised to [0, 1] over the front; the extremes are the per-objective best
    points. When the extremes do not span a hyperplane (degenerate front) the point closest to
    the normalised ideal point is returned instead.
    """
    f = np.asarray(front, np.float64)
    if len(f) <= 2:
        return int(np.argmax(f.sum(axis=1)))
    lo, hi = f.min(axis=0), f.max(axis=0)
    z = (f - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
    extremes = z[np.argmax(z, axis=0)]  # [S, S]
    try:
        normal = np.linalg.solve(extremes, np.ones(z.shape[1]))
    except np.linalg.LinAlgError:
        return int(np.argmin(np.linalg.norm(1.0 - z, axis=1)))
    if not np.all(np.isfinite(normal)) or np.linalg.matrix_rank(extremes) < z.shape[1]:
        return int(np.argmin(np.linalg.norm(1.0 - z, axis=1)))
    return int(np.argmax((z @ normal - 1.0) / np.linalg.norm(normal)))
