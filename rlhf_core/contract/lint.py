"""Lint a loaded contract: static ENSURES check, NaN / infinity risks, normalisation bounds and
approval-readiness warnings."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from rlhf_core.contract.build import LoadedContract
from rlhf_core.contract.card import StaticResult
from rlhf_core.contract.legal_blocks.normalize import normalizations
from rlhf_core.contract.legal_blocks.printer import format_expr
from rlhf_core.contract.numeric_risk import NanRisk, nan_risks


@dataclass(frozen=True)
class LintResult:
    """What ``contract lint`` reports.

    Attributes:
        contract: Contract name.
        version: Contract version.
        hash: Canonical hash.
        static: One result per ENSURES clause (proved / refuted / unknown).
        warnings: Problems that do not block use (e.g. a keyless draft).
        errors: Problems that make lint fail (e.g. a refuted ENSURES clause).
        nan_risks: Where a utility, the penalty or the reward can be NaN / ±inf (also listed in
            ``warnings``); confirmed, unacknowledged ones make ``sign`` and the pipeline refuse.
    """

    contract: str
    version: str
    hash: str
    static: tuple[StaticResult, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    errors: tuple[str, ...] = field(default=())
    nan_risks: tuple[NanRisk, ...] = field(default=())

    @property
    def blocking_nan_risks(self) -> tuple[NanRisk, ...]:
        """Confirmed NaN / inf risks the contract does not acknowledge."""
        return tuple(r for r in self.nan_risks if r.confirmed and not r.acknowledged)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "contract": self.contract,
            "version": self.version,
            "hash": self.hash,
            "ok": not self.errors,
            "static": [r.__dict__ for r in self.static],
            "warnings": list(self.warnings),
            "errors": list(self.errors),
            "nan_risks": [r.to_dict() for r in self.nan_risks],
        }


def static_results(contract: LoadedContract) -> tuple[StaticResult, ...]:
    """Run the interval static check of every ENSURES clause (empty when not installed)."""
    if importlib.util.find_spec("rlhf_core.contract.static_check") is None:
        return ()
    from rlhf_core.contract.static_check import check_ensures

    results = []
    for item in check_ensures(contract.program):
        lo, hi = item.reward_bounds
        detail = f"reward in [{lo:.4g}, {hi:.4g}]"
        if item.counterexample:
            detail += f"; counterexample {item.counterexample}"
        results.append(StaticResult(item.label, item.status, detail))
    return tuple(results)


def lint_contract(contract: LoadedContract) -> LintResult:
    """Check a loaded contract beyond parsing: ENSURES statically, keys for approval.

    Args:
        contract: A contract loaded with :func:`rlhf_core.contract.load_contract`.

    Returns:
        The lint result; ``errors`` is non-empty when an ENSURES clause is refuted.
    """
    static = static_results(contract)
    warnings: list[str] = []
    errors: list[str] = []
    for item in static:
        if item.status == "refuted":
            errors.append(f"ENSURES {item.label} is refuted: {item.detail}")
        elif item.status == "unknown":
            warnings.append(f"ENSURES {item.label} could not be proved statically; "
                            "it is checked at run time")
    risks = nan_risks(contract.program)
    for risk in risks:
        line = risk.describe()
        if risk.confirmed and not risk.acknowledged:
            line += ("; contract sign and the pipeline refuse this contract until it declares"
                     " 'acknowledge: [nan_risk]'")
        warnings.append(line)
    warnings.extend(normalization_notes(contract))
    keyed = [h.name for h in contract.spec.stakeholders if h.public_key]
    if not keyed:
        warnings.append("no stakeholder declares a public_key: this draft cannot be approved")
    return LintResult(contract.spec.contract, contract.spec.version, contract.hash, static,
                      tuple(warnings), tuple(errors), risks)


def normalization_notes(contract: LoadedContract) -> list[str]:
    """Where a ``zscore`` has no static bound from the data's shape: the static check then
    uses groups of fewer than 2**63 rows (``|z| < 3.04e9``)."""
    program = contract.program
    notes: list[str] = []
    seen: set[str] = set()
    for node in normalizations(program):
        if node.fn != "zscore" or (node.group == "prompt" and program.max_candidates):
            continue
        text = format_expr(node)
        if text in seen:
            continue
        seen.add(text)
        pos = node.pos
        at = f" at {pos.file}:{pos.line}:{pos.col}" if pos.source_line is not None else ""
        how = ("declare max_candidates (the most candidates of one prompt) to bound it"
               if node.group == "prompt" else "a run's size is only known when it is scored")
        notes.append(
            f"{text}{at}: |z| <= sqrt(n - 1) for a group of n rows, and no n is declared, so the"
            f" static check bounds it by runs of fewer than 2**63 rows (|z| < 3.04e9); {how}"
        )
    return notes
