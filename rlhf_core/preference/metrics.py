"""Pairwise evaluation metrics: strict-win accuracy, log-loss and expected calibration error.

All metrics take the logits ``d = r(chosen) − r(rejected)``, the targets (1.0 strict preference,
0.5 kept tie) and a non-negative row weight (a split mask), and ignore tie pairs: a tie has no
winner to predict.

References:
    Guo et al., "On Calibration of Modern Neural Networks", ICML 2017 (ECE with equal-width bins).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlhf_core.preference.model import weighted_mean


def _strict(target: jax.Array, weight: jax.Array) -> jax.Array:
    return jnp.where(target == 1.0, weight, 0.0)


def accuracy(logits: jax.Array, target: jax.Array, weight: jax.Array) -> jax.Array:
    """Share of strict pairs with ``r(chosen) > r(rejected)``; equal rewards count as wrong."""
    return weighted_mean((logits > 0).astype(jnp.float32), _strict(target, weight))


def log_loss(logits: jax.Array, target: jax.Array, weight: jax.Array) -> jax.Array:
    """Mean ``−log σ(d)`` over strict pairs (no margin: the model's own win probability)."""
    return weighted_mean(-jax.nn.log_sigmoid(logits), _strict(target, weight))


def expected_calibration_error(
    logits: jax.Array, target: jax.Array, weight: jax.Array, n_bins: int = 10
) -> jax.Array:
    """Top-label ECE: bins of confidence ``max(p, 1 − p)``, ``Σ_b (n_b/n)·|acc_b − conf_b|``.

    Orientation-free: swapping which response is listed first does not change it.
    """
    w = _strict(target, weight)
    p = jax.nn.sigmoid(logits)
    conf = jnp.maximum(p, 1.0 - p)
    correct = (logits > 0).astype(jnp.float32)
    # conf lies in [0.5, 1]: equal-width bins over that range.
    idx = jnp.clip(jnp.floor((conf - 0.5) * 2.0 * n_bins).astype(jnp.int32), 0, n_bins - 1)
    acc_b = jax.ops.segment_sum(w * correct, idx, n_bins)
    conf_b = jax.ops.segment_sum(w * conf, idx, n_bins)
    total = jnp.maximum(jnp.sum(w), 1e-30)
    return jnp.sum(jnp.abs(acc_b - conf_b)) / total


def pair_metrics(logits: jax.Array, target: jax.Array, weight: jax.Array) -> dict[str, jax.Array]:
    """``{"accuracy", "log_loss", "ece", "n_pairs"}`` for one split."""
    return {
        "accuracy": accuracy(logits, target, weight),
        "log_loss": log_loss(logits, target, weight),
        "ece": expected_calibration_error(logits, target, weight),
        "n_pairs": jnp.sum(_strict(target, weight)),
    }
