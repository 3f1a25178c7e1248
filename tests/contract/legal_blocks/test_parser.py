"""Parser structure: precedence, associativity, chained comparisons, clause defaults."""

from __future__ import annotations

import pytest

from rlhf_core.contract.legal_blocks import parse_clauses, parse_expr
from rlhf_core.contract.legal_blocks.ast import (
    Attr,
    Binary,
    Bool,
    Call,
    Clause,
    Compare,
    IfElse,
    Name,
    Num,
    Unary,
)

a, b, c, d = Name("a"), Name("b"), Name("c"), Name("d")


def n(value, is_int=True):
    return Num(float(value), is_int)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b * c", Binary("+", a, Binary("*", b, c))),
        ("a - b - c", Binary("-", Binary("-", a, b), c)),
        ("a / b / c", Binary("/", Binary("/", a, b), c)),
        ("a ^ b ^ c", Binary("^", a, Binary("^", b, c))),
        ("-a ^ b", Unary("-", Binary("^", a, b))),
        ("a ^ -b", Binary("^", a, Unary("-", b))),
        ("-a * b", Binary("*", Unary("-", a), b)),
        ("a - -b", Binary("-", a, Unary("-", b))),
        ("(a + b) * c", Binary("*", Binary("+", a, b), c)),
        ("a IMPLIES b IMPLIES c", Binary("IMPLIES", a, Binary("IMPLIES", b, c))),
        ("a OR b IMPLIES c", Binary("IMPLIES", Binary("OR", a, b), c)),
        ("a OR b AND c", Binary("OR", a, Binary("AND", b, c))),
        ("NOT a AND b", Binary("AND", Unary("NOT", a), b)),
        ("NOT a < b", Unary("NOT", Compare(("<",), (a, b)))),
        ("a AND NOT NOT b", Binary("AND", a, Unary("NOT", Unary("NOT", b)))),
        ("a < b <= c", Compare(("<", "<="), (a, b, c))),
        (
            "a + 1 == b * 2 != c",
            Compare(("==", "!="), (Binary("+", a, n(1)), Binary("*", b, n(2)), c)),
        ),
        ("(a < b) == c", Compare(("==",), (Compare(("<",), (a, b)), c))),
        ("IF a THEN b ELSE c + d", IfElse(a, b, Binary("+", c, d))),
        ("(IF a THEN b ELSE c) + d", Binary("+", IfElse(a, b, c), d)),
        ("IF IF a THEN b ELSE c THEN d ELSE a", IfElse(IfElse(a, b, c), d, a)),
        (
            "min(a, b, 3) + clip(a, 0, 1)",
            Binary("+", Call("min", (a, b, n(3))), Call("clip", (a, n(0), n(1)))),
        ),
        ("max()", Call("max", ())),
        ("r.helpfulness", Attr("r", "helpfulness")),
        ("true OR false", Binary("OR", Bool(True), Bool(False))),
        (
            "2.5 + 1e-3 + 7 + 1E+2",
            Binary(
                "+", Binary("+", Binary("+", n(2.5, False), n(0.001, False)), n(7)), n(100.0, False)
            ),
        ),
        ("a # trailing comment", a),
        ("a +\n  b", Binary("+", a, b)),
        ("a + \\\n b", Binary("+", a, b)),
    ],
)
def test_expression_structure(text, expected):
    assert parse_expr(text) == expected


def test_int_and_float_literals_are_distinguished():
    assert parse_expr("3").is_int is True
    assert parse_expr("3.0").is_int is False
    assert parse_expr("3e0").is_int is False
    assert parse_expr("3") == Num(3.0, True) != Num(3.0, False)


def test_clause_defaults_labels_and_kinds():
    text = (
        "safe: REQUIRES is_safe\n"
        "INVARIANT verbosity <= 3\n"
        "terse: INVARIANT verbosity <= 2 SEVERITY 2 PENALTY 0.5\n"
        "ENSURES -1 <= reward AND \\\n"
        "   reward <= 1   # bounded\n"
        "\n"
        "   # comment-only line\n"
        "any_safe: EXISTS r IN prompt: r.is_safe\n"
        "FORALL cand IN prompt: cand.severity < 3\n"
    )
    clauses = parse_clauses(text)
    assert [c.label for c in clauses] == [
        "safe",
        "clause_2",
        "terse",
        "clause_4",
        "any_safe",
        "clause_6",
    ]
    assert [c.kind for c in clauses] == [
        "REQUIRES",
        "INVARIANT",
        "INVARIANT",
        "ENSURES",
        "EXISTS",
        "FORALL",
    ]
    assert (clauses[1].penalty, clauses[1].severity) == (1.0, 1.0)
    assert (clauses[2].penalty, clauses[2].severity) == (0.5, 2.0)
    assert clauses[0].penalty is None and clauses[0].severity is None and clauses[0].var is None
    assert clauses[4] == Clause("any_safe", "EXISTS", Attr("r", "is_safe"), var="r")
    assert clauses[5].var == "cand"
    assert clauses[3].expr == Binary(
        "AND",
        Compare(("<=",), (Unary("-", n(1)), Name("reward"))),
        Compare(("<=",), (Name("reward"), n(1))),
    )


def test_empty_and_comment_only_blocks_have_no_clauses():
    assert parse_clauses("") == ()
    assert parse_clauses("\n  # nothing here\n\n") == ()


def test_windows_line_endings():
    clauses = parse_clauses("a: REQUIRES is_safe\r\nb: REQUIRES flagged\r\n")
    assert [c.label for c in clauses] == ["a", "b"]
