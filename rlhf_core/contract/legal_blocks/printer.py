"""Canonical printer for Legal-Blocks: AST -> text with ``parse(print(ast)) == ast``.

The canonical form is what the contract hash covers, so it is fully determined by the AST:
single spaces around binary operators, parentheses only where precedence or associativity
requires them (an ``IF`` used as an operand is always parenthesised, because its ``ELSE`` branch
extends as far right as possible), integers printed as integers, floats with ``repr`` (shortest
text that reads back to the same float), every clause with its label and, for INVARIANT, an
explicit PENALTY and SEVERITY.
"""

from __future__ import annotations

import math
import re

from rlhf_core.contract.legal_blocks.ast import (
    Attr,
    Binary,
    Bool,
    Call,
    Clause,
    Compare,
    Expr,
    IfElse,
    Name,
    Normalize,
    Num,
    Unary,
)
from rlhf_core.contract.legal_blocks.lexer import KEYWORDS
from rlhf_core.contract.legal_blocks.limits import MAX_DEPTH
from rlhf_core.contract.legal_blocks.walk import find_too_deep

# Precedence levels, loosest first; an operand is parenthesised when its level is below the
# level its position requires.
_IF, _IMPLIES, _OR, _AND, _NOT, _CMP, _SUM, _TERM, _UNARY, _POWER, _ATOM = range(11)
_BINARY_LEVEL = {
    "IMPLIES": _IMPLIES,
    "OR": _OR,
    "AND": _AND,
    "+": _SUM,
    "-": _SUM,
    "*": _TERM,
    "/": _TERM,
    "^": _POWER,
}
# (required level of the left operand, of the right operand)
_OPERAND_LEVELS = {
    "IMPLIES": (_OR, _IMPLIES),
    "OR": (_OR, _AND),
    "AND": (_AND, _NOT),
    "+": (_SUM, _TERM),
    "-": (_SUM, _TERM),
    "*": (_TERM, _UNARY),
    "/": (_TERM, _UNARY),
    "^": (_ATOM, _UNARY),
}
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_number(value: float, is_int: bool = False) -> str:
    """Canonical text of a non-negative finite number literal.

    Raises:
        ValueError: ``value`` is NaN or infinite (no literal denotes it).
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot print non-finite number {value!r} as a Legal-Blocks literal")
    if is_int and value.is_integer():
        return str(int(value))
    return repr(value)


def _ident(text: str) -> str:
    if (
        not _IDENT_RE.match(text)
        or text in KEYWORDS
        or text.startswith("__")
        or text in ("true", "false")
    ):
        raise ValueError(f"{text!r} is not a valid Legal-Blocks identifier")
    return text


def _wrap(expr: Expr, required: int) -> str:
    text, level = _fmt(expr)
    return f"({text})" if level < required else text


def _fmt(expr: Expr) -> tuple[str, int]:
    """Text of ``expr`` and the precedence level of its outermost construct."""
    if isinstance(expr, Num):
        text = format_number(abs(expr.value), expr.is_int)
        if math.copysign(1.0, expr.value) < 0:
            return f"-{text}", _UNARY
        return text, _ATOM
    if isinstance(expr, Bool):
        return ("true" if expr.value else "false"), _ATOM
    if isinstance(expr, Name):
        return _ident(expr.id), _ATOM
    if isinstance(expr, Attr):
        return f"{_ident(expr.var)}.{_ident(expr.column)}", _ATOM
    if isinstance(expr, Unary):
        if expr.op == "NOT":
            return f"NOT {_wrap(expr.operand, _NOT)}", _NOT
        return f"-{_wrap(expr.operand, _UNARY)}", _UNARY
    if isinstance(expr, Binary):
        left_level, right_level = _OPERAND_LEVELS[expr.op]
        left = _wrap(expr.left, left_level)
        right = _wrap(expr.right, right_level)
        return f"{left} {expr.op} {right}", _BINARY_LEVEL[expr.op]
    if isinstance(expr, Compare):
        if len(expr.operands) != len(expr.ops) + 1 or not expr.ops:
            raise ValueError("Compare needs n operators and n + 1 operands (n >= 1)")
        parts = [_wrap(expr.operands[0], _SUM)]
        for op, operand in zip(expr.ops, expr.operands[1:], strict=True):
            parts.append(f"{op} {_wrap(operand, _SUM)}")
        return " ".join(parts), _CMP
    if isinstance(expr, Call):
        args = ", ".join(_fmt(arg)[0] for arg in expr.args)
        return f"{_ident(expr.fn)}({args})", _ATOM
    if isinstance(expr, IfElse):
        cond, then, orelse = (_fmt(e)[0] for e in (expr.cond, expr.then, expr.orelse))
        return f"IF {cond} THEN {then} ELSE {orelse}", _IF
    if isinstance(expr, Normalize):
        if expr.group not in ("prompt", "run"):
            raise ValueError(f"{expr.group!r} is not a normalisation group (prompt or run)")
        return f"{_ident(expr.fn)}({_fmt(expr.arg)[0]} IN {expr.group})", _ATOM
    raise TypeError(f"not a Legal-Blocks expression node: {type(expr).__name__}")


def format_expr(expr: Expr) -> str:
    """Canonical text of an expression.

    Raises:
        ValueError: The tree nests deeper than ``MAX_DEPTH``, or holds a non-finite number
            or an invalid identifier (it could not have come from the parser).
    """
    if find_too_deep(expr, MAX_DEPTH) is not None:
        raise ValueError(f"expression nests deeper than {MAX_DEPTH} levels; cannot print it")
    return _fmt(expr)[0]


def format_clause(clause: Clause) -> str:
    """Canonical one-line text of a clause, always labelled, defaults explicit.

    Raises:
        ValueError: As ``format_expr``, or a quantifier clause without a variable.
    """
    head = f"{_ident(clause.label)}: {clause.kind}"
    body = format_expr(clause.expr)
    if clause.kind in ("FORALL", "EXISTS"):
        if clause.var is None:
            raise ValueError(f"{clause.kind} clause '{clause.label}' has no variable")
        return f"{head} {_ident(clause.var)} IN prompt: {body}"
    if clause.kind == "INVARIANT":
        penalty = 1.0 if clause.penalty is None else clause.penalty
        severity = 1.0 if clause.severity is None else clause.severity
        return f"{head} {body} PENALTY {format_number(penalty)} SEVERITY {format_number(severity)}"
    return f"{head} {body}"


def format_clauses(clauses: tuple[Clause, ...] | list[Clause]) -> str:
    """Canonical text of a clause block: one clause per line, joined by newlines."""
    return "\n".join(format_clause(clause) for clause in clauses)
