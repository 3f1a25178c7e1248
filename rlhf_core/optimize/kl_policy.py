"""Constrained KL-regularised policy over each prompt's candidates, λ by dual ascent.

Maximise ``E_p E_{π_p}[R] − β·E_p KL(π_p ‖ π_ref,p)`` subject to ``E_p E_{π_p}[cost] ≤ budget``
(prompts weighted equally). For a fixed multiplier the inner problem has the closed form
``π_λ ∝ π_ref·exp((R − λ·cost)/β)``; the expected cost of ``π_λ`` decreases in λ, so

* if ``π_0`` (the unconstrained closed form) meets the budget the constraint is inactive: λ = 0;
* otherwise λ is found by dual ascent on ``η = log λ`` (Adam on the dual with a decaying step,
  η clamped to ``[log λ_min, log λ_max]``, as Safe-RLHF parametrises its Lagrange multiplier);
* if the budget is below the smallest achievable expected cost (``budget = 0`` with costly
  candidates, say) the problem is infeasible: ``feasible`` is False and λ ends at the clamp; the
  caller raises. A budget equal to the minimum is reachable only as λ → ∞, reported the same way
  unless the slack is within tolerance.

References:
    Dai et al., "Safe RLHF: Safe Reinforcement Learning from Human Feedback", ICLR 2024.
    Rafailov et al., "Direct Preference Optimization", NeurIPS 2023 (the KL-regularised optimum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rlhf_core.errors import OptimizationDivergedError


@dataclass(frozen=True)
class KLPolicyConfig:
    """Settings of the constrained policy solve.

    Args:
        beta: KL coefficient (> 0).
        learning_rate: Initial Adam step on log λ.
        decay: Per-step multiplicative step decay.
        max_steps: Dual-ascent iterations.
        lambda_min: Lower clamp of λ while ascending (λ = 0 exactly when inactive).
        lambda_max: Upper clamp of λ.
        tol: Converged when ``|slack| ≤ tol·(1 + |budget|)``.
    """

    beta: float = 0.1
    learning_rate: float = 0.3
    decay: float = 0.995
    max_steps: int = 3000
    lambda_min: float = 1e-6
    lambda_max: float = 1e6
    tol: float = 1e-5

    def __post_init__(self) -> None:
        if not self.beta > 0 or not 0 < self.lambda_min < self.lambda_max:
            raise ValueError(
                f"KLPolicyConfig: need beta > 0 and 0 < lambda_min < lambda_max (got beta={self.beta}, "
                f"lambda_min={self.lambda_min}, lambda_max={self.lambda_max})"
            )


class KLPolicyResult(NamedTuple):
    """Solution and diagnostics (arrays; traced code does not raise).

    Attributes:
        policy: float32 ``[P, C]``, rows sum to 1 over allowed candidates.
        lam: The multiplier λ.
        slack: ``budget − E[cost]`` (≥ 0 when satisfied).
        kl: Mean KL(π ‖ π_ref) over prompts.
        expected_reward: Mean ``E_π[R]``.
        expected_cost: Mean ``E_π[cost]``.
        objective: ``expected_reward − β·kl``.
        active: The constraint binds (λ > 0).
        feasible: The budget is achievable.
        converged: Inactive, or the slack reached tolerance.
        steps: Dual-ascent steps.
    """

    policy: jax.Array
    lam: jax.Array
    slack: jax.Array
    kl: jax.Array
    expected_reward: jax.Array
    expected_cost: jax.Array
    objective: jax.Array
    active: jax.Array
    feasible: jax.Array
    converged: jax.Array
    steps: jax.Array


def tilted_policy(
    lam: jax.Array, beta: float, reward: jax.Array, cost: jax.Array, log_ref: jax.Array
) -> jax.Array:
    """``π_λ ∝ π_ref·exp((R − λ·cost)/β)`` per prompt (``log_ref = −inf`` where not allowed)."""
    return jax.nn.softmax(log_ref + (reward - lam * cost) / beta, axis=1)


def policy_stats(
    policy: jax.Array, reward: jax.Array, cost: jax.Array, log_ref: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean expected reward, expected cost and KL to the reference over prompts."""
    safe = policy > 0
    kl = jnp.sum(jnp.where(safe, policy * (jnp.log(jnp.where(safe, policy, 1.0)) - log_ref), 0.0), 1)
    er = jnp.sum(jnp.where(safe, policy * reward, 0.0), axis=1)
    ec = jnp.sum(jnp.where(safe, policy * cost, 0.0), axis=1)
    return jnp.mean(er), jnp.mean(ec), jnp.mean(kl)


def make_kl_policy(
    config: KLPolicyConfig,
) -> Callable[[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array], KLPolicyResult]:
    """Jitted ``solve(reward, cost, ref, allowed, budget) -> KLPolicyResult``.

    ``reward``, ``cost``, ``ref`` are float32 ``[P, C]`` (``ref`` need not be normalised; it is
    renormalised over allowed candidates), ``allowed`` bool ``[P, C]``, ``budget`` a scalar.
    """
    beta = config.beta
    lo, hi = jnp.log(config.lambda_min), jnp.log(config.lambda_max)
    opt = optax.adam(optax.exponential_decay(config.learning_rate, 1, config.decay))

    def solve(reward, cost, ref, allowed, budget) -> KLPolicyResult:  # noqa: ANN001
        ref = jnp.where(allowed, ref, 0.0)
        log_ref = jnp.log(ref / jnp.sum(ref, axis=1, keepdims=True))
        support = ref > 0
        min_cost = jnp.mean(jnp.min(jnp.where(support, cost, jnp.inf), axis=1))
        tol = config.tol * (1.0 + jnp.abs(budget))

        def expected_cost(eta: jax.Array) -> jax.Array:
            return policy_stats(tilted_policy(jnp.exp(eta), beta, reward, cost, log_ref),
                                reward, cost, log_ref)[1]

        def cond(c: tuple) -> jax.Array:
            _, _, step, ec = c
            return (step < config.max_steps) & (jnp.abs(budget - ec) > tol)

        def body(c: tuple) -> tuple:
            eta, state, step, ec = c
            # d(dual)/dη = λ·(budget − E[cost]); Adam normalises the scale.
            grad = jnp.exp(eta) * (budget - ec)
            updates, state = opt.update(grad, state)
            eta = jnp.clip(eta + updates, lo, hi)
            return eta, state, step + 1, expected_cost(eta)

        ec0 = policy_stats(tilted_policy(0.0, beta, reward, cost, log_ref), reward, cost, log_ref)[1]
        active = ec0 > budget
        eta0 = jnp.float32(0.0)
        init = (eta0, opt.init(eta0), jnp.int32(0), jnp.where(active, expected_cost(eta0), budget))
        eta, _, steps, _ = jax.lax.while_loop(cond, body, init)
        lam = jnp.where(active, jnp.exp(eta), 0.0)
        policy = tilted_policy(lam, beta, reward, cost, log_ref)
        er, ec, kl = policy_stats(policy, reward, cost, log_ref)
        slack = budget - ec
        return KLPolicyResult(
            policy=policy,
            lam=lam,
            slack=slack,
            kl=kl,
            expected_reward=er,
            expected_cost=ec,
            objective=er - beta * kl,
            active=active,
            feasible=budget >= min_cost - tol,
            converged=~active | (jnp.abs(slack) <= tol),
            steps=steps,
        )

    return jax.jit(solve)


def check_policy(result: KLPolicyResult, budget: float) -> None:
    """Raise :class:`OptimizationDivergedError` for an infeasible, unconverged or non-finite solve."""
    if not bool(result.feasible):
        raise OptimizationDivergedError(
            f"constrained policy: cost budget {budget} is below the smallest achievable expected "
            f"cost; raise the budget or allow cheaper candidates (λ hit its clamp {float(result.lam):.3g})"
        )
    if not bool(jnp.isfinite(result.objective)) or not bool(result.converged):
        raise OptimizationDivergedError(
            f"constrained policy: dual ascent did not converge in {int(result.steps)} steps "
            f"(slack {float(result.slack):.3g}, λ {float(result.lam):.3g}); raise max_steps or beta"
        )
