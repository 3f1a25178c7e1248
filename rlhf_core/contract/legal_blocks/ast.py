"""Legal-Blocks abstract syntax tree.

Nodes are frozen dataclasses. Source positions are carried in ``pos`` but excluded from
equality and hashing, so ``parse(print(ast)) == ast`` compares structure only.

Expression nodes:
    Num, Bool, Name, Attr (``r.col`` inside a quantifier), Unary (``-``, ``NOT``),
    Binary (``+ - * / ^ AND OR IMPLIES``), Compare (chained ``< <= > >= == !=``),
    Call (registered function), IfElse (``IF c THEN a ELSE b``),
    Normalize (group-relative ``zscore`` / ``rank`` / ``minmax`` of an expression over the
    candidates of a prompt or over the whole run: ``zscore(x IN prompt)``).

Clause node:
    Clause(label, kind, expr, penalty, severity, var) with kind one of
    REQUIRES, INVARIANT, ENSURES, FORALL, EXISTS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Pos:
    """1-based source position of a node.

    ``source_line`` (the text of the line, for caret displays) is excluded from equality.
    """

    file: str = "<string>"
    line: int = 1
    col: int = 1
    source_line: str | None = field(default=None, compare=False, repr=False)


_NOPOS = Pos()


@dataclass(frozen=True)
class Num:
    value: float
    is_int: bool = False
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Bool:
    value: bool
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Name:
    id: str
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Attr:
    """``var.column``: a column of the candidate bound by a quantifier."""

    var: str
    column: str
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


UnaryOp = Literal["-", "NOT"]
BinaryOp = Literal["+", "-", "*", "/", "^", "AND", "OR", "IMPLIES"]
CompareOp = Literal["<", "<=", ">", ">=", "==", "!="]


@dataclass(frozen=True)
class Unary:
    op: UnaryOp
    operand: Expr
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Binary:
    op: BinaryOp
    left: Expr
    right: Expr
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Compare:
    """Chained comparison ``a < b <= c`` meaning ``a < b AND b <= c`` (Python semantics)."""

    ops: tuple[CompareOp, ...]
    operands: tuple[Expr, ...]
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Expr, ...]
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class IfElse:
    cond: Expr
    then: Expr
    orelse: Expr
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


NormalizeFn = Literal["zscore", "rank", "minmax"]
Group = Literal["prompt", "run"]


@dataclass(frozen=True)
class Normalize:
    """``fn(arg IN group)``: a group-relative normalisation (docs/contracts.md#normalised-signals).

    Attributes:
        fn: ``zscore``, ``rank`` or ``minmax``.
        arg: Number expression of the row's inputs.
        group: ``prompt`` (the candidates sharing the row's prompt id) or ``run`` (every row
            scored in the run).
    """

    fn: NormalizeFn
    arg: Expr
    group: Group
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)


Expr = Num | Bool | Name | Attr | Unary | Binary | Compare | Call | IfElse | Normalize

ClauseKind = Literal["REQUIRES", "INVARIANT", "ENSURES", "FORALL", "EXISTS"]


@dataclass(frozen=True)
class Clause:
    """One Legal-Blocks clause.

    Attributes:
        label: Clause name (generated as ``clause_<n>`` by the parser when absent).
        kind: REQUIRES (hard veto), INVARIANT (soft penalty), ENSURES (bounds on ``reward``),
            FORALL / EXISTS (quantifier over the candidates of one prompt).
        expr: Boolean expression.
        penalty: INVARIANT penalty (default 1.0 when omitted); ``None`` for other kinds.
        severity: INVARIANT severity multiplier (default 1.0); ``None`` for other kinds.
        var: Bound variable name for FORALL / EXISTS; ``None`` otherwise.
    """

    label: str
    kind: ClauseKind
    expr: Expr
    penalty: float | None = None
    severity: float | None = None
    var: str | None = None
    pos: Pos = field(default=_NOPOS, compare=False, repr=False)
