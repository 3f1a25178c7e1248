"""The checked, normalised form of a contract that compilers and analyses consume.

``ContractSpec`` (the pydantic model of the YAML file) is turned into a ``ContractProgram`` by
``rlhf_core.contract.build_program``: utilities and clauses parsed and type-checked, weights
normalised to sum to 1, defaults filled. Compilers (JAX, DuckDB SQL), the interval analysis
and the aggregation rules only ever see this frozen structure, never pydantic models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rlhf_core.contract.legal_blocks.ast import Clause, Expr

DType = Literal["float", "int", "bool", "str"]
Rule = Literal["weighted_sum", "utilitarian", "nash_bargaining", "max_min", "lexicographic"]


@dataclass(frozen=True)
class InputDecl:
    """A typed input column. ``lo``/``hi`` are the declared range (None when unbounded);
    ``on_null``/``default`` what the ingest does with a missing value (see ``InputSpec``)."""

    name: str
    dtype: DType
    lo: float | None = None
    hi: float | None = None
    on_null: str = "quarantine"
    default: bool | int | float | str | None = None


@dataclass(frozen=True)
class StakeholderProgram:
    """One stakeholder: normalised weight, checked utility expression, Nash disagreement point.

    ``disagreement`` is None when the contract leaves it to the default (the utility's lower
    bound from interval analysis).
    """

    name: str
    weight: float
    utility: Expr
    disagreement: float | None = None


@dataclass(frozen=True)
class ContractProgram:
    """Everything needed to score rows under a contract.

    Attributes:
        name: Contract name.
        inputs: Declared input columns, in declaration order.
        stakeholders: Stakeholders in declaration order, weights summing to 1.
        rule: Aggregation rule.
        lex_order: Stakeholder names in lexicographic priority (lexicographic rule only;
            defaults to declaration order).
        lex_tolerance: Tolerance within which a lexicographic comparison falls through to the
            next stakeholder.
        floor_reward: Reward given to vetoed rows and to rows outside the Nash bargaining set.
        clauses: Checked clauses in file order.
        group_column: Column that identifies a prompt (the quantifier domain).
        max_candidates: Declared largest number of candidates of one prompt (None when not
            declared); bounds per-prompt z-scores statically and is enforced when scoring.
        acknowledge: Risks the contract's approvers accept knowingly (``nan_risk``: a utility,
            the penalty or the reward may be NaN or infinite over the declared ranges).
    """

    name: str
    inputs: tuple[InputDecl, ...]
    stakeholders: tuple[StakeholderProgram, ...]
    rule: Rule
    clauses: tuple[Clause, ...] = ()
    lex_order: tuple[str, ...] = ()
    lex_tolerance: float = 0.0
    floor_reward: float = -1.0
    group_column: str = "prompt_id"
    max_candidates: int | None = None
    acknowledge: tuple[str, ...] = ()

    def input(self, name: str) -> InputDecl:
        """The declared input called ``name`` (KeyError if undeclared)."""
        for decl in self.inputs:
            if decl.name == name:
                return decl
        raise KeyError(name)
