"""Flow ``optimize-policy``: stakeholder trade-offs, the constrained KL policy and DPO pairs."""

from __future__ import annotations

from prefect import flow
from prefect.futures import wait
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ops.access import guard
from ops.confinement import confined
from tasks.optimize import compute_pareto_front, export_dpo_pairs, solve_kl_policy


class OptimizePolicyParams(BaseModel):
    """Parameters of ``optimize-policy``.

    Attributes:
        contract: Contract YAML (stakeholders, weights, clauses, selection settings).
        run_id: Run whose ``scores`` are optimised over.
        lake_root: Lake root.
        cost_column: Scores column constrained in expectation (``penalty``, a ``u_*`` or ``v_*``).
        budget: Upper bound on the policy's expected cost; None: midway between the cheapest
            achievable expected cost and the reference policy's (always feasible).
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    contract: str
    run_id: str
    lake_root: str = ".wizard"
    cost_column: str = "penalty"
    budget: float | None = Field(default=None, ge=0.0)
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="optimize-policy", log_prints=True)
def optimize_policy(params: OptimizePolicyParams) -> dict:
    """Pareto front + Nash point, constrained KL policy, TRL DPO pairs: independent tasks (each
    reads the run's scores and writes its own table), run side by side."""
    params = confined(params, "optimize-policy", data=("contract",))
    guard(params, "run", contract=params.contract)
    pareto = compute_pareto_front.submit(params.contract, params.run_id, params.lake_root)
    policy = solve_kl_policy.submit(params.contract, params.run_id, params.lake_root,
                                    params.cost_column, params.budget)
    pairs = export_dpo_pairs.submit(params.contract, params.run_id, params.lake_root)
    wait([pareto, policy, pairs])  # all three end before a failure is raised
    return {"pareto": pareto.result(), "policy": policy.result(), "pairs": pairs.result()}
