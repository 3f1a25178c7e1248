"""Resource limits are inclusive and leave room for recursive consumers."""

from __future__ import annotations

import pytest

from rlhf_core.contract.legal_blocks import (
    MAX_DEPTH,
    MAX_EXPR_CHARS,
    check_expr,
    format_expr,
    parse_clauses,
    parse_expr,
)
from rlhf_core.errors import ContractSyntaxError
from tests.contract.legal_blocks.strategies import DEFAULT_INPUTS as INPUTS


def _nested(depth: int) -> list[str]:
    """Expressions whose syntactic nesting and/or AST depth is exactly ``depth``."""
    return [
        "(" * (depth - 1) + "helpfulness" + ")" * (depth - 1),
        "-" * (depth - 1) + "helpfulness",
        " + ".join(["helpfulness"] * depth),
        "helpfulness" + " ^ helpfulness" * (depth - 1),
    ]


def _at_stack_depth(frames: int, fn):
    if frames == 0:
        return fn()
    return _at_stack_depth(frames - 1, fn)


@pytest.mark.parametrize("text", _nested(MAX_DEPTH))
def test_exactly_max_depth_is_accepted_by_every_stage(text):
    def run():
        expr = parse_expr(text)
        assert check_expr(expr, INPUTS, expect="number") == "number"
        printed = format_expr(expr)
        assert parse_expr(printed) == expr
        return expr

    # Leave a margin: the whole front end works with 150 frames already on the stack.
    _at_stack_depth(150, run)


@pytest.mark.parametrize("text", _nested(MAX_DEPTH + 1))
def test_one_level_deeper_is_refused(text):
    with pytest.raises(ContractSyntaxError, match=f"deeper than {MAX_DEPTH} levels"):
        parse_expr(text)


def test_expression_length_limit_is_inclusive():
    body = "1 + " * ((MAX_EXPR_CHARS - 1) // 4)
    text = (body + "1").ljust(MAX_EXPR_CHARS)
    assert len(text) == MAX_EXPR_CHARS
    with pytest.raises(ContractSyntaxError, match="deeper"):
        parse_expr(text)  # within the length limit, so the depth limit is what trips
    with pytest.raises(ContractSyntaxError, match="longer than") as info:
        parse_expr(text + " ")
    assert info.value.col == MAX_EXPR_CHARS + 1


def test_long_flat_expressions_within_limits_parse():
    text = "max(" + ", ".join(["helpfulness"] * 5000) + ")"
    assert len(text) < MAX_EXPR_CHARS
    expr = parse_expr(text)
    assert len(expr.args) == 5000
    assert check_expr(expr, INPUTS) == "number"
    chain = " < ".join(["1"] * 15000)
    assert len(parse_expr(chain).ops) == 14999
    clauses = parse_clauses("\n".join(f"c{i}: REQUIRES is_safe" for i in range(2000)))
    assert len(clauses) == 2000
