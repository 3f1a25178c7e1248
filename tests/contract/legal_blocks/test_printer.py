"""Canonical printer: minimal parentheses, exact numbers, explicit defaults."""

from __future__ import annotations

import pytest

from rlhf_core.contract.legal_blocks import (
    format_clause,
    format_clauses,
    format_expr,
    format_number,
    parse_clauses,
    parse_expr,
)
from rlhf_core.contract.legal_blocks.ast import Binary, Clause, Name, Num, Unary


@pytest.mark.parametrize(
    ("source", "canonical"),
    [
        ("((a)) + (b * c)", "a + b * c"),
        ("(a + b) * c", "(a + b) * c"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("a + (b + c)", "a + (b + c)"),
        ("(a ^ b) ^ c", "(a ^ b) ^ c"),
        ("a ^ (b ^ c)", "a ^ b ^ c"),
        ("(-a) ^ 2", "(-a) ^ 2"),
        ("-(a ^ 2)", "-a ^ 2"),
        ("a ^ (-b)", "a ^ -b"),
        ("-(-a)", "--a"),
        ("(a IMPLIES b) IMPLIES c", "(a IMPLIES b) IMPLIES c"),
        ("a IMPLIES (b IMPLIES c)", "a IMPLIES b IMPLIES c"),
        ("NOT (a AND b)", "NOT (a AND b)"),
        ("(NOT a) AND b", "NOT a AND b"),
        ("NOT (a < b)", "NOT a < b"),
        ("a == (NOT b)", "a == (NOT b)"),
        ("(a<b)==(c<d)", "(a < b) == (c < d)"),
        ("IF a THEN b ELSE (c + d)", "IF a THEN b ELSE c + d"),
        ("(IF a THEN b ELSE c) * 2", "(IF a THEN b ELSE c) * 2"),
        ("2 * (IF a THEN b ELSE c)", "2 * (IF a THEN b ELSE c)"),
        ("min( a,b ,  (c) )", "min(a, b, c)"),
        ("r . x", "r.x"),
        ("0.1 + 1e-05 + 1E300 + 007 + 2.50", "0.1 + 1e-05 + 1e+300 + 7 + 2.5"),
        ("123456789012345678901234567890", "123456789012345677877719597056"),
    ],
)
def test_canonical_text(source, canonical):
    expr = parse_expr(source)
    assert format_expr(expr) == canonical
    assert parse_expr(canonical) == expr


def test_numbers_round_trip_exactly():
    for value in (0.1, 1 / 3, 5e-324, 1.7976931348623157e308, 2.0**60, 0.0):
        assert parse_expr(format_number(value)) == Num(value)
    assert format_number(3.0, is_int=True) == "3"
    assert format_number(2.5, is_int=True) == "2.5"
    with pytest.raises(ValueError, match="non-finite"):
        format_number(float("inf"))


def test_negative_literal_built_by_hand_prints_as_unary_minus():
    expr = Binary("^", Num(-2.0, True), Name("a"))
    assert format_expr(expr) == "(-2) ^ a"
    assert parse_expr("(-2) ^ a") == Binary("^", Unary("-", Num(2.0, True)), Name("a"))


def test_invalid_identifiers_are_refused():
    for bad in ("__class__", "AND", "a b", "true", "1x"):
        with pytest.raises(ValueError, match="not a valid Legal-Blocks identifier"):
            format_expr(Name(bad))


def test_clause_printing_fills_defaults_and_labels():
    clauses = parse_clauses(
        "REQUIRES  is_safe\nINVARIANT verbosity<=3\nq: EXISTS r IN prompt : r.ok"
    )
    assert format_clauses(clauses) == (
        "clause_1: REQUIRES is_safe\n"
        "clause_2: INVARIANT verbosity <= 3 PENALTY 1.0 SEVERITY 1.0\n"
        "q: EXISTS r IN prompt: r.ok"
    )
    assert format_clause(Clause("x", "INVARIANT", Name("ok"))) == (
        "x: INVARIANT ok PENALTY 1.0 SEVERITY 1.0"
    )
    assert format_clauses(()) == ""
