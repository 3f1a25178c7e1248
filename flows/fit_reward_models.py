"""Flow ``fit-reward-models``: Bradley–Terry models per preference criterion, fitted on Dask."""

from __future__ import annotations

from itertools import product
from typing import Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ops.access import guard
from ops.confinement import confined
from ops.runtime import DaskConfig, make_task_runner
from tasks.preference import fit_candidate, select_reward_models


class FitRewardModelsParams(BaseModel):
    """Parameters of ``fit-reward-models``.

    Attributes:
        run_id: Run whose ``responses`` / ``preferences`` partitions are used (and extended with
            ``rm_<criterion>`` columns).
        lake_root: Lake root.
        criteria: Preference label columns to model, e.g. ``better`` and ``safer``.
        seeds: Seeds (fold assignment and initialisation); one candidate each.
        l2_grid: L2 strengths; one candidate each.
        k_folds: Prompt-grouped cross-validation folds.
        optimizer: ``lbfgs`` (optax L-BFGS) or ``adam`` (with early stopping).
        hidden: 0 for a linear head, else the width of a one-hidden-layer MLP.
        ties: ``drop`` ties or keep them as half-wins (``half``).
        numeric_columns: Numeric response attributes used as features next to the text features.
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    lake_root: str = ".wizard"
    criteria: list[str] = Field(default_factory=lambda: ["better"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    l2_grid: list[float] = Field(default_factory=lambda: [0.01, 0.1], min_length=1)
    k_folds: int = Field(default=5, ge=2, le=20)
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    hidden: int = Field(default=0, ge=0, le=1024)
    ties: Literal["drop", "half"] = "drop"
    numeric_columns: list[str] = Field(default_factory=list)
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="fit-reward-models", task_runner=make_task_runner(DaskConfig()), log_prints=True)
def fit_reward_models(params: FitRewardModelsParams) -> dict:
    """Fan out criteria × seeds × L2 on Dask -> pick the best per criterion -> score responses."""
    params = confined(params, "fit-reward-models")
    guard(params, "run")
    grid = list(product(params.criteria, params.seeds, params.l2_grid))
    futures = [
        fit_candidate.submit(params.run_id, params.lake_root, i, criterion, seed, l2, params.k_folds,
                             params.optimizer, params.hidden, params.ties, params.numeric_columns)
        for i, (criterion, seed, l2) in enumerate(grid)
    ]
    return select_reward_models(params.run_id, params.lake_root, [f.result() for f in futures])


def fit_reward_models_with(params: FitRewardModelsParams, dask: DaskConfig,
                           rows: int | None = None) -> dict:
    """Run ``fit-reward-models`` on the Dask cluster described by ``dask`` (in-process for a
    run of at most ``dask.in_process_max_rows`` rows)."""
    return fit_reward_models.with_options(task_runner=make_task_runner(dask, rows))(params)
