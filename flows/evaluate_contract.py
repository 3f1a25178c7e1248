"""Flow ``evaluate-contract``: does the contract agree with the annotators of a scored run?"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ops.access import guard
from ops.confinement import confined
from tasks.evaluate import evaluate_agreement


class EvaluateContractParams(BaseModel):
    """Parameters of ``evaluate-contract``.

    Attributes:
        contract: The contract the run was scored with.
        run_id: A run holding ``preferences`` and ``scores``.
        lake_root: Lake root.
        criteria: Criteria to evaluate (empty: every label column of the run).
        n_resamples: Bootstrap resamples over prompts for the confidence intervals.
        seed: Bootstrap seed.
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    contract: str
    run_id: str
    lake_root: str = ".wizard"
    criteria: list[str] = Field(default_factory=list)
    n_resamples: int = Field(default=1000, ge=0, le=100_000)
    seed: int = 0
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="evaluate-contract", log_prints=True)
def evaluate_contract(params: EvaluateContractParams) -> dict:
    """Agreement of the reward, each utility and each input column with the labels."""
    params = confined(params, "evaluate-contract", data=("contract",))
    guard(params, "run", contract=params.contract)
    return evaluate_agreement(params.contract, params.run_id, params.lake_root,
                              params.criteria or None, params.n_resamples, params.seed)
