"""Lint a loaded contract: static ENSURES check and approval-readiness warnings."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from rlhf_core.contract.build import LoadedContract
from rlhf_core.contract.card import StaticResult


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
    """

    contract: str
    version: str
    hash: str
    static: tuple[StaticResult, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    errors: tuple[str, ...] = field(default=())

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
    keyed = [h.name for h in contract.spec.stakeholders if h.public_key]
    if not keyed:
        warnings.append("no stakeholder declares a public_key: this draft cannot be approved")
    return LintResult(contract.spec.contract, contract.spec.version, contract.hash, static,
                      tuple(warnings), tuple(errors))
