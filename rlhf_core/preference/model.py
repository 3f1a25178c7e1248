"""Bradley–Terry reward heads and the pairwise loss with TRL ``RewardTrainer`` semantics.

``P(a ≻ b) = σ(r(a) − r(b))`` with ``r`` a linear head (no bias: Bradley–Terry is shift
invariant) or a one-hidden-layer MLP.

Loss per pair (``d = r(chosen) − r(rejected)``, ``m`` the margin, ``t`` the target)::

    −t·log σ(d − m) − (1 − t)·log σ(m − d)

With ``t = 1`` this is exactly TRL's ``−logsigmoid(r_c − r_r − margin)``. Ties are handled
explicitly: the data layer either drops them (the default, what TRL does by never building them) or
keeps them with ``t = 0.5`` and ``m = 0``, the Bradley–Terry likelihood of a draw counted as half a
win each way. Accuracy counts strict wins only (``d > 0``) and ignores tie pairs.

References:
    Bradley & Terry, "Rank Analysis of Incomplete Block Designs", Biometrika 1952.
    Ouyang et al., "Training language models to follow instructions with human feedback", 2022.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class PairData(NamedTuple):
    """Preference pairs over a table of response features.

    Attributes:
        feats: float32 ``[n_responses, dim]`` response features.
        chosen: int32 ``[n_pairs]`` row of the preferred response.
        rejected: int32 ``[n_pairs]`` row of the other response.
        margin: float32 ``[n_pairs]`` TRL margin (0 when unused).
        target: float32 ``[n_pairs]`` 1.0 for a strict preference, 0.5 for a kept tie.
    """

    feats: jax.Array
    chosen: jax.Array
    rejected: jax.Array
    margin: jax.Array
    target: jax.Array


class LinearHead(NamedTuple):
    """Linear reward ``r(x) = x·w``."""

    w: jax.Array  # [dim]


class MLPHead(NamedTuple):
    """One-hidden-layer reward ``r(x) = tanh(x·W1 + b1)·w2``."""

    w1: jax.Array  # [dim, hidden]
    b1: jax.Array  # [hidden]
    w2: jax.Array  # [hidden]


Head = LinearHead | MLPHead


def init_head(key: jax.Array, dim: int, hidden: int = 0) -> Head:
    """Initial parameters: zeros for the linear head, scaled normals for the MLP.

    Args:
        key: PRNG key.
        dim: Feature width.
        hidden: Hidden units; 0 selects the linear head.

    Returns:
        A :class:`LinearHead` or :class:`MLPHead`.
    """
    if hidden <= 0:
        return LinearHead(w=jnp.zeros((dim,), jnp.float32))
    k1, k2 = jax.random.split(key)
    return MLPHead(
        w1=jax.random.normal(k1, (dim, hidden), jnp.float32) / jnp.sqrt(dim),
        b1=jnp.zeros((hidden,), jnp.float32),
        w2=jax.random.normal(k2, (hidden,), jnp.float32) / jnp.sqrt(hidden),
    )


def reward(params: Head, feats: jax.Array) -> jax.Array:
    """Scalar reward per row: ``[n, dim] -> [n]``."""
    if isinstance(params, LinearHead):
        return feats @ params.w
    return jnp.tanh(feats @ params.w1 + params.b1) @ params.w2


def pair_logits(params: Head, data: PairData) -> jax.Array:
    """``r(chosen) − r(rejected)`` per pair, ``[n_pairs]``."""
    r = reward(params, data.feats)
    return r[data.chosen] - r[data.rejected]


def l2_penalty(params: Head) -> jax.Array:
    """``½‖weights‖²`` over weight matrices (biases are not penalised)."""
    if isinstance(params, LinearHead):
        return 0.5 * jnp.vdot(params.w, params.w)
    return 0.5 * (jnp.vdot(params.w1, params.w1) + jnp.vdot(params.w2, params.w2))


def pair_losses(logits: jax.Array, margin: jax.Array, target: jax.Array) -> jax.Array:
    """Per-pair loss ``−t·log σ(d − m) − (1 − t)·log σ(m − d)``."""
    z = logits - margin
    return -(target * jax.nn.log_sigmoid(z) + (1.0 - target) * jax.nn.log_sigmoid(-z))


def weighted_mean(values: jax.Array, weight: jax.Array) -> jax.Array:
    """Mean of ``values`` under non-negative ``weight`` (0 when the weights sum to 0)."""
    total = jnp.sum(weight)
    return jnp.where(total > 0, jnp.sum(values * weight) / jnp.maximum(total, 1e-30), 0.0)
