"""Constrained KL-regularised policy: closed form when inactive, grid search over λ when binding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.errors import OptimizationDivergedError
from rlhf_core.optimize import KLPolicyConfig, check_policy, make_kl_policy, tilted_policy
from rlhf_core.optimize.kl_policy import policy_stats

BETA = 0.5


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    reward = rng.normal(size=(200, 4)).astype(np.float32)
    cost = rng.random((200, 4)).astype(np.float32)
    ref = rng.random((200, 4)).astype(np.float32) + 0.1
    allowed = rng.random((200, 4)) > 0.1
    allowed[:, 0] = True
    return reward, cost, ref, allowed


def test_inactive_constraint_gives_the_closed_form() -> None:
    reward, cost, ref, allowed = _problem()
    res = make_kl_policy(KLPolicyConfig(beta=BETA))(reward, cost, ref, allowed, jnp.float32(10.0))
    r = np.where(allowed, ref, 0.0)
    r = r / r.sum(axis=1, keepdims=True)
    closed = r * np.exp(reward / BETA)
    closed /= closed.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(res.policy), closed, rtol=1e-5, atol=1e-7)
    assert float(res.lam) == 0.0 and not bool(res.active) and float(res.slack) > 0
    assert np.all(np.asarray(res.policy)[~allowed] == 0)
    np.testing.assert_allclose(np.asarray(res.policy).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("budget", [0.45, 0.33, 0.25])
def test_binding_constraint_matches_fine_grid_over_lambda(budget: float) -> None:
    reward, cost, ref, allowed = _problem()
    res = make_kl_policy(KLPolicyConfig(beta=BETA))(reward, cost, ref, allowed, jnp.float32(budget))
    check_policy(res, budget)
    assert bool(res.active) and abs(float(res.slack)) < 1e-4
    r = np.where(allowed, ref, 0.0)
    log_ref = jnp.log(r / r.sum(axis=1, keepdims=True))
    lams = jnp.asarray(np.geomspace(1e-3, 1e3, 6001), jnp.float32)

    @jax.jit
    def grid(lams: jax.Array) -> tuple[jax.Array, jax.Array]:
        def one(lam: jax.Array) -> tuple[jax.Array, jax.Array]:
            er, ec, kl = policy_stats(tilted_policy(lam, BETA, reward, cost, log_ref), reward, cost, log_ref)
            return er - BETA * kl, ec
        return jax.vmap(one)(lams)

    objective, expected_cost = (np.asarray(a) for a in grid(lams))
    best = float(objective[expected_cost <= budget].max())
    assert float(res.objective) == pytest.approx(best, abs=2e-3)
    assert float(res.objective) >= best - 2e-3


def test_zero_budget_infeasible_raises_and_feasible_zero_cost_converges() -> None:
    reward, cost, ref, allowed = _problem()
    solve = make_kl_policy(KLPolicyConfig(beta=BETA))
    res = solve(reward, cost + 0.05, ref, allowed, jnp.float32(0.0))
    assert not bool(res.feasible)
    with pytest.raises(OptimizationDivergedError, match="below the smallest achievable"):
        check_policy(res, 0.0)
    # Zero budget is fine when most mass can go to zero-cost candidates: λ large, KL finite.
    free = cost.copy()
    free[:, 0] = 0.0
    res = solve(reward, free, ref, allowed, jnp.float32(0.01))
    check_policy(res, 0.01)
    assert float(res.lam) > 1.0 and np.isfinite(float(res.kl))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_policy_is_a_distribution_over_allowed_candidates(seed: int, budget: float) -> None:
    reward, cost, ref, allowed = _problem(seed)
    res = _SOLVE(reward[:40], cost[:40], ref[:40], allowed[:40], jnp.float32(budget))
    pol = np.asarray(res.policy)
    np.testing.assert_allclose(pol.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(pol[~allowed[:40]] == 0) and np.all(pol >= 0)
    if bool(res.feasible) and bool(res.converged):
        assert float(res.slack) >= -1e-4 and float(res.kl) >= -1e-6
    assert float(res.lam) >= 0


_SOLVE = make_kl_policy(KLPolicyConfig(beta=BETA))


def _scores_table(candidates: int, prompts: int = 30, seed: int = 0):
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n = candidates * prompts
    return pa.table({
        "prompt_id": [f"p{i // candidates:03d}" for i in range(n)],
        "response_id": [f"r{i}" for i in range(n)],
        "reward": rng.random(n).astype(np.float32),
        "penalty": rng.random(n).astype(np.float32),
        "veto": np.zeros(n, bool),
    })


def test_one_candidate_per_prompt_is_reported_not_failed() -> None:
    from rlhf_core.optimize import optimize_policy

    selections, summary = optimize_policy(_scores_table(1), "penalty", None, KLPolicyConfig(beta=0.1))
    assert summary["status"] == "nothing to choose" and summary["lambda"] == 0.0
    assert summary["prompts"] == 30 and summary["min_cost"] == pytest.approx(summary["reference_cost"])
    assert selections.column("policy_prob").to_pylist() == [1.0] * 30


def test_default_budget_is_feasible_and_binds_between_cheapest_and_reference() -> None:
    from rlhf_core.optimize import optimize_policy

    _, summary = optimize_policy(_scores_table(4, seed=3), "penalty", None, KLPolicyConfig(beta=0.1))
    assert summary["status"] == "solved"
    assert summary["min_cost"] < summary["budget"] < summary["reference_cost"]
    assert summary["budget"] == pytest.approx(0.5 * (summary["min_cost"] + summary["reference_cost"]))
    assert summary["expected_cost"] <= summary["budget"] + 1e-4 and summary["active"]
