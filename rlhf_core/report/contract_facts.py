"""What the report says about the contract a run enforced: hash, approvals, clauses and their checks.

The approval and static-check results come from the run's audit trail (``contract_validated``:
what was verified when the run started), not from re-verifying today; the clauses come from the
contract file the run was given, and the report says so when that file has changed since.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_core.errors import WizardError, first_line
from rlhf_core.security.audit import AuditEntry

_STATIC_STATUS = {"proved": "proved statically", "refuted": "REFUTED statically",
                  "unknown": "not proved statically; checked at run time"}


@dataclass(frozen=True)
class ClauseRow:
    """One clause as the report lists it.

    Attributes:
        label: Clause label (the ``v_<label>`` score column).
        kind: REQUIRES, INVARIANT, ENSURES, FORALL or EXISTS.
        text: Canonical printed form.
        check: Static-check status for ENSURES clauses, how it is enforced otherwise.
        violation_rate: Share of scored responses violating it (None when not scored).
    """

    label: str
    kind: str
    text: str
    check: str
    violation_rate: float | None = None


@dataclass(frozen=True)
class ContractFacts:
    """The contract section of the report.

    Attributes:
        name: Contract name.
        version: Contract version.
        hash: Canonical hash the run used.
        path: Contract file given to the run.
        approved: Whether the approval quorum was met at validation time.
        approved_by: Stakeholders with a valid signature.
        dry_run: The run scored without approval.
        stakeholders: ``(name, weight, utility expression)`` rows.
        rule: Aggregation rule.
        clauses: Clause rows.
        notes: Caveats (file changed since the run, file unreadable ...).
    """

    name: str
    version: str
    hash: str
    path: str
    approved: bool
    approved_by: tuple[str, ...]
    dry_run: bool
    stakeholders: tuple[tuple[str, float, str], ...] = ()
    rule: str = ""
    clauses: tuple[ClauseRow, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _enforcement(kind: str, clause: Any) -> str:
    if kind == "REQUIRES":
        return "hard veto, checked per response at run time"
    if kind == "INVARIANT":
        return f"soft penalty {clause.penalty:g} x severity {clause.severity:g}, checked at run time"
    if kind in ("FORALL", "EXISTS"):
        return f"{kind} over each prompt's candidates, checked at run time"
    return "checked at run time"


def contract_facts(
    run_id: str,
    run_entries: Sequence[AuditEntry],
    contract_path: str | None,
    dry_run: bool,
    violations: Mapping[str, float],
) -> ContractFacts | None:
    """Assemble the contract section for run ``run_id``.

    Args:
        run_id: The run.
        run_entries: The run's audit entries (see :func:`rlhf_core.report.collect.run_audit`).
        contract_path: The contract file the run was given (from its parameters).
        dry_run: Whether the run was a dry run.
        violations: Clause label -> violation rate from the run's scores.

    Returns:
        The facts, or None when the run never validated a contract.
    """
    validated = [e for e in run_entries if e.kind == "contract_validated"]
    if not validated:
        return None
    details = validated[-1].details
    static = {r["label"]: r for r in details.get("static", [])}
    notes: list[str] = []
    clauses: list[ClauseRow] = []
    stakeholders: list[tuple[str, float, str]] = []
    rule = ""
    if contract_path and Path(contract_path).is_file():
        from rlhf_core.contract import load_contract
        from rlhf_core.contract.legal_blocks import format_clause, format_expr

        try:
            loaded = load_contract(contract_path)
        except WizardError as exc:
            notes.append(f"the contract file {contract_path} no longer loads: {first_line(exc)}")
            loaded = None
        if loaded is not None:
            if loaded.hash != details.get("hash"):
                notes.append(f"{contract_path} has changed since this run (now {loaded.hash}); "
                             "clauses below are from the current file")
            rule = loaded.program.rule
            stakeholders = [(h.name, h.weight, format_expr(h.utility)) for h in loaded.program.stakeholders]
            for clause in loaded.program.clauses:
                kind = clause.kind
                check = (_STATIC_STATUS.get(static[clause.label]["status"], static[clause.label]["status"])
                         + f" ({static[clause.label].get('detail', '')})"
                         if clause.label in static else _enforcement(kind, clause))
                clauses.append(ClauseRow(clause.label, kind, format_clause(clause), check,
                                         violations.get(clause.label)))
    else:
        notes.append(f"contract file {contract_path or '(not recorded)'} is not available; "
                     "clauses are listed from the run's audit record only")
        for label, item in static.items():
            clauses.append(ClauseRow(label, "ENSURES", "", _STATIC_STATUS.get(item["status"], item["status"]),
                                     violations.get(label)))
    return ContractFacts(
        name=str(details.get("name", "?")), version=str(details.get("version", "?")),
        hash=str(details.get("hash", validated[-1].subject)), path=contract_path or "",
        approved=bool(details.get("approved")), approved_by=tuple(details.get("approved_by", [])),
        dry_run=dry_run, stakeholders=tuple(stakeholders), rule=rule, clauses=tuple(clauses),
        notes=tuple(notes),
    )
