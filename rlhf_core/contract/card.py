"""Hugging Face style model-card section describing a reward contract.

The card is Markdown with YAML front matter (machine-readable: name, version, hash, rule,
stakeholders and weights, approvals) followed by a readable body: the stakeholders table, the
clauses in canonical form, the ENSURES static-check results and the approval status.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

from rlhf_core.contract.build import LoadedContract
from rlhf_core.contract.hashing import canonical_clauses
from rlhf_core.contract.legal_blocks import format_expr


@dataclass(frozen=True)
class StaticResult:
    """One ENSURES clause's static-check outcome, for display."""

    label: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class ApprovalSummary:
    """What the card shows about approval (from an ``ApprovalReport``)."""

    approved: bool
    quorum: int
    approved_by: tuple[str, ...]
    failures: tuple[str, ...] = ()


def _front_matter(contract: LoadedContract, approval: ApprovalSummary | None) -> str:
    spec, program = contract.spec, contract.program
    doc: dict[str, Any] = {
        "reward_contract": {
            "name": spec.contract,
            "version": spec.version,
            "hash": contract.hash,
            "supersedes": spec.supersedes,
            "aggregation": program.rule,
            "stakeholders": [
                {"name": h.name, "weight": round(h.weight, 6)} for h in program.stakeholders
            ],
            "inputs": [d.name for d in program.inputs],
            "clauses": len(program.clauses),
        },
        "tags": ["rlhf", "reward-contract", f"aggregation-{program.rule}"],
    }
    if approval is not None:
        doc["reward_contract"]["approval"] = {
            "approved": approval.approved,
            "quorum": approval.quorum,
            "approved_by": list(approval.approved_by),
        }
    buf = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.dump(doc, buf)
    return f"---\n{buf.getvalue()}---\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_card(
    contract: LoadedContract,
    approval: ApprovalSummary | None = None,
    static: Sequence[StaticResult] = (),
) -> str:
    """Render the model-card section.

    Args:
        contract: The loaded contract.
        approval: Approval status to show (omitted from the card when None).
        static: ENSURES static-check results to list.

    Returns:
        Markdown text starting with YAML front matter.
    """
    spec, program = contract.spec, contract.program
    lines = [
        _front_matter(contract, approval),
        f"## Reward contract `{spec.contract}` v{spec.version}",
        "",
    ]
    if spec.description.strip():
        lines += [" ".join(spec.description.split()), ""]
    lines += [
        f"- **Hash:** `{contract.hash}`",
        f"- **Supersedes:** `{spec.supersedes}`" if spec.supersedes else "- **Supersedes:** none",
        f"- **Aggregation:** `{program.rule}`"
        + (f" (order {', '.join(program.lex_order)}, tolerance {program.lex_tolerance})"
           if program.rule == "lexicographic" else ""),
        f"- **Floor reward:** {program.floor_reward}",
        "",
        "### Stakeholders",
        "",
        "| stakeholder | weight | utility | disagreement | approval key |",
        "|---|---:|---|---:|---|",
    ]
    for decl, holder in zip(spec.stakeholders, program.stakeholders, strict=True):
        key = f"`{decl.public_key[:20]}…`" if decl.public_key else "none"
        dis = "default" if holder.disagreement is None else f"{holder.disagreement:g}"
        lines.append(
            f"| {holder.name} | {holder.weight:.4f} | `{_cell(format_expr(holder.utility))}` "
            f"| {dis} | {key} |"
        )
    lines += ["", "### Inputs", "", "| column | type | range |", "|---|---|---|"]
    for decl in program.inputs:
        rng = "—" if decl.lo is None else f"[{decl.lo:g}, {decl.hi:g}]"
        lines.append(f"| {decl.name} | {decl.dtype} | {rng} |")
    lines += ["", "### Clauses", ""]
    clauses = canonical_clauses(contract)
    lines += ["```", *clauses, "```"] if clauses else ["No clauses."]
    if static:
        lines += ["", "### Static check of ENSURES clauses", "", "| clause | result | detail |",
                  "|---|---|---|"]
        lines += [f"| {r.label} | {r.status} | {_cell(r.detail)} |" for r in static]
    if approval is not None:
        lines += ["", "### Approval", ""]
        status = "approved" if approval.approved else "NOT approved"
        signed = ", ".join(approval.approved_by) or "nobody"
        lines.append(f"{status}: quorum {approval.quorum}, signed by {signed}.")
        lines += [f"- {f}" for f in approval.failures]
    return "\n".join(lines) + "\n"
