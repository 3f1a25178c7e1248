"""Fitting Bradley–Terry heads with optax Adam (early stopping) or optax L-BFGS (line search).

``make_fit(config)`` closes over a validated :class:`FitConfig` and returns a jitted
``fit(key, data, train_weight, val_weight, l2) -> FitResult``. Splits are row weights over the
same :class:`PairData` (1 = in split, 0 = out), so folds and seeds can be ``vmap``-ed in one
compiled program. The loop is a ``lax.while_loop``; traced code never raises: the result carries
``finite`` / ``converged`` and the caller raises
:class:`rlhf_core.errors.OptimizationDivergedError`.

Objective: ``weighted_mean(pair_losses) + l2·½‖w‖²`` over the training weights. Early stopping
(Adam) keeps the parameters with the best validation loss and stops after ``patience`` steps without
improvement; without validation rows it tracks the training objective.

References:
    Kingma & Ba, "Adam", ICLR 2015. Nocedal & Wright, "Numerical Optimization", ch. 7 (L-BFGS).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu

from rlhf_core.errors import OptimizationDivergedError
from rlhf_core.preference.model import (
    Head,
    LinearHead,
    PairData,
    init_head,
    l2_penalty,
    pair_logits,
    pair_losses,
    weighted_mean,
)


@dataclass(frozen=True)
class FitConfig:
    """Hyper-parameters of one Bradley–Terry fit.

    Args:
        hidden: MLP hidden units; 0 = linear head.
        optimizer: ``"adam"`` (early stopping) or ``"lbfgs"`` (zoom line search).
        l2: Default L2 strength on weights (``l2·½‖w‖²`` added to the mean loss).
        learning_rate: Adam step size.
        max_steps: Iteration cap.
        patience: Adam early-stopping patience in steps.
        min_delta: Improvement in validation loss that resets the patience counter.
        tol: L-BFGS stops when the gradient norm falls below this.
    """

    hidden: int = 0
    optimizer: Literal["adam", "lbfgs"] = "lbfgs"
    l2: float = 1e-3
    learning_rate: float = 0.05
    max_steps: int = 300
    patience: int = 20
    min_delta: float = 1e-5
    tol: float = 1e-5

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"FitConfig.optimizer={self.optimizer!r}: use 'adam' or 'lbfgs'")
        if self.l2 < 0 or self.max_steps < 1 or self.hidden < 0 or self.patience < 1:
            raise ValueError(
                "FitConfig: l2 must be >= 0, max_steps >= 1, hidden >= 0, patience >= 1 "
                f"(got l2={self.l2}, max_steps={self.max_steps}, hidden={self.hidden}, patience={self.patience})"
            )


class FitResult(NamedTuple):
    """Outcome of one fit (all leaves are arrays, so results can be vmapped).

    Attributes:
        params: Fitted head (best validation loss for Adam).
        steps: Iterations run.
        best_step: Step whose parameters were kept.
        train_objective: Training loss + L2 at the kept parameters.
        val_loss: Validation loss (margin-aware, no L2) at the kept parameters.
        grad_norm: Gradient norm of the training objective at the last iterate.
        converged: L-BFGS: gradient below tol; Adam: stopped early or reached max_steps cleanly.
        finite: Every value seen was finite.
    """

    params: Head
    steps: jax.Array
    best_step: jax.Array
    train_objective: jax.Array
    val_loss: jax.Array
    grad_norm: jax.Array
    converged: jax.Array
    finite: jax.Array


def _logits_fn(linear: bool, data: PairData) -> Callable[[Head], jax.Array]:
    if linear:
        # A linear head only needs the pair differences: gather once, outside the loop.
        diff = data.feats[data.chosen] - data.feats[data.rejected]
        return lambda params: diff @ params.w
    return lambda params: pair_logits(params, data)


@functools.cache
def make_fit(
    config: FitConfig,
) -> Callable[[jax.Array, PairData, jax.Array, jax.Array, jax.Array], FitResult]:
    """Build the jitted fit function for ``config`` (memoised: equal configs share compilations).

    Returns:
        ``fit(key, data, train_weight, val_weight, l2) -> FitResult`` where the weights are float32
        ``[n_pairs]`` and ``l2`` a scalar (traced, so an L2 grid does not recompile).
    """
    linear = config.hidden == 0

    def fit(
        key: jax.Array, data: PairData, train_w: jax.Array, val_w: jax.Array, l2: jax.Array
    ) -> FitResult:
        logits_of = _logits_fn(linear, data)

        def data_loss(params: Head, w: jax.Array) -> jax.Array:
            return weighted_mean(pair_losses(logits_of(params), data.margin, data.target), w)

        def objective(params: Head) -> jax.Array:
            return data_loss(params, train_w) + l2 * l2_penalty(params)

        params0 = init_head(key, data.feats.shape[1], config.hidden)
        has_val = jnp.sum(val_w) > 0
        if config.optimizer == "lbfgs":
            return _run_lbfgs(config, objective, data_loss, params0, val_w)
        return _run_adam(config, objective, data_loss, params0, val_w, has_val)

    return jax.jit(fit)


def _run_lbfgs(config, objective, data_loss, params0, val_w) -> FitResult:  # noqa: ANN001
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def cond(carry: tuple) -> jax.Array:
        _, state, step, gnorm, finite = carry
        return (step == 0) | ((gnorm >= config.tol) & (step < config.max_steps) & finite)

    def body(carry: tuple) -> tuple:
        params, state, step, _, finite = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=objective)
        params = optax.apply_updates(params, updates)
        gnorm = otu.tree_norm(otu.tree_get(state, "grad"))
        return params, state, step + 1, gnorm, finite & jnp.isfinite(value) & jnp.isfinite(gnorm)

    init = (params0, opt.init(params0), jnp.int32(0), jnp.float32(jnp.inf), jnp.bool_(True))
    params, _, steps, _, finite = jax.lax.while_loop(cond, body, init)
    value, grad = jax.value_and_grad(objective)(params)
    gnorm = otu.tree_norm(grad)
    return FitResult(
        params=params,
        steps=steps,
        best_step=steps,
        train_objective=value,
        val_loss=data_loss(params, val_w),
        grad_norm=gnorm,
        converged=(gnorm < config.tol * 10) & finite,
        finite=finite & jnp.isfinite(value),
    )


class _AdamCarry(NamedTuple):
    step: jax.Array
    params: Head
    opt_state: optax.OptState
    best: Head
    best_val: jax.Array
    best_step: jax.Array
    since_best: jax.Array
    gnorm: jax.Array
    finite: jax.Array


def _run_adam(config, objective, data_loss, params0, val_w, has_val) -> FitResult:  # noqa: ANN001
    opt = optax.adam(config.learning_rate)

    def cond(c: _AdamCarry) -> jax.Array:
        return (c.step < config.max_steps) & (c.since_best < config.patience) & c.finite

    def body(c: _AdamCarry) -> _AdamCarry:
        value, grad = jax.value_and_grad(objective)(c.params)
        updates, opt_state = opt.update(grad, c.opt_state, c.params)
        params = optax.apply_updates(c.params, updates)
        monitored = jnp.where(has_val, data_loss(params, val_w), objective(params))
        better = monitored < c.best_val - config.min_delta
        best = jax.tree.map(lambda new, old: jnp.where(better, new, old), params, c.best)
        gnorm = otu.tree_norm(grad)
        return _AdamCarry(
            step=c.step + 1,
            params=params,
            opt_state=opt_state,
            best=best,
            best_val=jnp.where(better, monitored, c.best_val),
            best_step=jnp.where(better, c.step + 1, c.best_step),
            since_best=jnp.where(better, 0, c.since_best + 1),
            gnorm=gnorm,
            finite=c.finite & jnp.isfinite(value) & jnp.isfinite(gnorm),
        )

    init = _AdamCarry(
        step=jnp.int32(0),
        params=params0,
        opt_state=opt.init(params0),
        best=params0,
        best_val=jnp.where(has_val, data_loss(params0, val_w), objective(params0)),
        best_step=jnp.int32(0),
        since_best=jnp.int32(0),
        gnorm=jnp.float32(jnp.inf),
        finite=jnp.bool_(True),
    )
    out = jax.lax.while_loop(cond, body, init)
    return FitResult(
        params=out.best,
        steps=out.step,
        best_step=out.best_step,
        train_objective=objective(out.best),
        val_loss=data_loss(out.best, val_w),
        grad_norm=out.gnorm,
        converged=out.finite,
        finite=out.finite & jnp.isfinite(objective(out.best)),
    )


def check_fit(result: FitResult, where: str) -> None:
    """Raise :class:`OptimizationDivergedError` if a (single, un-vmapped) fit went non-finite.

    Args:
        result: Output of a fit function.
        where: What was fitted (criterion, fold, seed) for the message.
    """
    if not bool(result.finite):
        raise OptimizationDivergedError(
            f"Bradley–Terry fit {where}: non-finite loss or gradient after {int(result.steps)} "
            "steps; lower learning_rate, raise l2 or standardise numeric feature columns"
        )


__all__ = ["FitConfig", "FitResult", "LinearHead", "check_fit", "make_fit"]
