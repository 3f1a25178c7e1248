"""Iterative traversal helpers used by the limits and by downstream compilers."""

from __future__ import annotations

import pytest

from rlhf_core.contract.legal_blocks import children, columns, names, parse_expr, walk
from rlhf_core.contract.legal_blocks.ast import Binary, Name, Num
from rlhf_core.contract.legal_blocks.walk import find_too_deep


def test_walk_is_preorder_and_complete():
    expr = parse_expr("IF a THEN min(b, 2) ELSE -c < d")
    kinds = [type(node).__name__ for node in walk(expr)]
    assert kinds == ["IfElse", "Name", "Call", "Name", "Num", "Compare", "Unary", "Name", "Name"]
    assert children(parse_expr("1 < 2 < 3")) == (Num(1.0, True), Num(2.0, True), Num(3.0, True))
    with pytest.raises(TypeError, match="not a Legal-Blocks expression node"):
        children("a")  # type: ignore[arg-type]


def test_names_and_columns():
    expr = parse_expr("r.helpfulness + verbosity <= reward AND s.is_safe")
    assert names(expr) == {"verbosity", "reward"}
    assert columns(expr) == {"helpfulness", "verbosity", "is_safe"}


def test_find_too_deep_handles_very_deep_trees_without_recursion():
    expr = Name("x")
    for _ in range(50_000):
        expr = Binary("+", expr, Name("y"))
    deep = find_too_deep(expr, 200)
    assert isinstance(deep, Binary)
    assert find_too_deep(parse_expr("a + b"), 2) is None
    assert find_too_deep(parse_expr("a + b"), 1) == Name("a")
