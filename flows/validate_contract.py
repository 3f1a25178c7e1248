"""Flow ``validate-contract``: parse, type-check, prove ENSURES, verify signatures and quorum."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, SecretStr

from ops.access import guard
from ops.confinement import confined
from tasks.contract import check_contract


class ValidateContractParams(BaseModel):
    """Parameters of ``validate-contract``.

    Attributes:
        contract: Path of the contract YAML (its DSSE envelope sits beside it).
        dry_run: Accept an unapproved contract (nothing it produces is for training).
        lake_root: Lake root whose audit log records the validation.
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    contract: str
    dry_run: bool = False
    lake_root: str = ".wizard"
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="validate-contract", log_prints=True)
def validate_contract(params: ValidateContractParams) -> dict:
    """Validate the contract; refuse it unless approved or the run is a dry run."""
    params = confined(params, "validate-contract", data=("contract",))
    guard(params, "run", contract=params.contract)
    return check_contract(params.contract, params.dry_run, params.lake_root)
