"""Contract tasks: validate (parse, check, prove, verify approvals) and audit its use."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from rlhf_core.contract import load_contract
from rlhf_core.contract.lint import lint_contract
from rlhf_core.contract.numeric_risk import refusal
from rlhf_core.errors import ContractError, SignatureError
from rlhf_core.lake.store import Lake
from rlhf_core.security.approval import verify
from rlhf_core.security.audit import AuditLog


@task(name="check-contract")
def check_contract(contract_path: str, dry_run: bool, lake_root: str) -> dict[str, Any]:
    """Load, type-check and statically check the contract, verify its approvals, audit the result.

    Raises:
        ContractError: The contract does not load, an ENSURES clause is refuted, or a utility,
            the penalty or the reward can be NaN / infinite over the declared ranges (a
            confirmed NaN risk) and the contract does not declare ``acknowledge: [nan_risk]``
            (also on dry runs: such a run produces NaN rewards).
        SignatureError: The contract is not approved and the run is not a dry run.
    """
    contract = load_contract(contract_path)
    lint = lint_contract(contract)
    approval = verify(contract_path, contract)
    audit = AuditLog(Lake(lake_root))
    facts = {
        "name": contract.spec.contract,
        "version": contract.spec.version,
        "hash": contract.hash,
        "approved": approval.approved,
        "approved_by": list(approval.approved_by),
        "static": [r.__dict__ for r in lint.static],
        "warnings": list(lint.warnings),
        "nan_risks": [r.to_dict() for r in lint.nan_risks],
    }
    audit.append("contract_validated", contract.hash, {"path": contract_path, **facts})
    if lint.errors:
        raise ContractError(f"{contract_path}: " + "; ".join(lint.errors))
    if lint.blocking_nan_risks:
        raise ContractError(f"{contract_path}: "
                            + refusal(lint.blocking_nan_risks, "refusing to run this contract"))
    if approval.approved:
        audit.append("contract_approved", contract.hash, {"approved_by": facts["approved_by"]})
    elif not dry_run:
        raise SignatureError(
            f"{contract_path}: contract is not approved ({approval.summary()}); sign it with "
            "`rlhf-wizard contract sign`, or pass --dry-run to score without approval"
        )
    else:
        get_run_logger().warning("dry run with an unapproved contract: %s", approval.summary())
    return facts


@task(name="record-contract-use")
def record_contract_use(contract_hash: str, run_id: str, lake_root: str, dry_run: bool) -> None:
    """Audit that run ``run_id`` scores data under the contract."""
    AuditLog(Lake(lake_root)).append("contract_used", contract_hash, {"run_id": run_id, "dry_run": dry_run})
