"""Iterative traversal of Legal-Blocks expressions.

Traversal uses an explicit stack, so it is safe on arbitrarily deep trees; it is how the front
end enforces ``MAX_DEPTH`` before anything recursive (checker, printer, compilers) runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from rlhf_core.contract.legal_blocks.ast import (
    Attr,
    Binary,
    Bool,
    Call,
    Compare,
    Expr,
    IfElse,
    Name,
    Normalize,
    Num,
    Unary,
)


def children(expr: Expr) -> tuple[Expr, ...]:
    """Direct sub-expressions of ``expr`` in source order.

    Raises:
        TypeError: ``expr`` is not a Legal-Blocks expression node.
    """
    if isinstance(expr, Num | Bool | Name | Attr):
        return ()
    if isinstance(expr, Unary):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, Compare):
        return expr.operands
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, IfElse):
        return (expr.cond, expr.then, expr.orelse)
    if isinstance(expr, Normalize):
        return (expr.arg,)
    raise TypeError(f"not a Legal-Blocks expression node: {type(expr).__name__}")


def walk(expr: Expr) -> Iterator[Expr]:
    """Yield ``expr`` and all its sub-expressions, pre-order, without recursion."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def find_too_deep(expr: Expr, limit: int) -> Expr | None:
    """The first node (pre-order) lying deeper than ``limit`` levels, or None.

    The root is at depth 1.
    """
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return node
        stack.extend((child, depth + 1) for child in reversed(children(node)))
    return None


def names(expr: Expr) -> frozenset[str]:
    """Bare names referenced by ``expr`` (inputs and ``reward``; not quantifier columns)."""
    return frozenset(node.id for node in walk(expr) if isinstance(node, Name))


def columns(expr: Expr) -> frozenset[str]:
    """Input columns referenced by ``expr``, bare or as ``r.column``."""
    found = set()
    for node in walk(expr):
        if isinstance(node, Name) and node.id != "reward":
            found.add(node.id)
        elif isinstance(node, Attr):
            found.add(node.column)
    return frozenset(found)


def normalizations(expr: Expr) -> tuple[Normalize, ...]:
    """Every ``zscore`` / ``rank`` / ``minmax`` node of ``expr``, pre-order."""
    return tuple(node for node in walk(expr) if isinstance(node, Normalize))
