"""Property tests: canonical printing round-trips through the parser and is idempotent."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.contract.legal_blocks import (
    check_clauses,
    check_expr,
    format_clauses,
    format_expr,
    parse_clauses,
    parse_expr,
)
from rlhf_core.contract.legal_blocks.ast import Clause, Compare
from rlhf_core.errors import ContractSyntaxError, ContractTypeError
from tests.contract.legal_blocks.strategies import DEFAULT_INPUTS, clause_blocks, expressions

INPUTS = DEFAULT_INPUTS
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(expressions(INPUTS, "number"))
def test_number_expressions_round_trip(expr):
    assert check_expr(expr, INPUTS, expect="number") == "number"
    text = format_expr(expr)
    reparsed = parse_expr(text)
    assert reparsed == expr
    assert format_expr(reparsed) == text


@_SETTINGS
@given(expressions(INPUTS, "bool", allow_reward=True))
def test_bool_expressions_round_trip(expr):
    assert check_expr(expr, INPUTS, allow_reward=True, expect="bool") == "bool"
    text = format_expr(expr)
    reparsed = parse_expr(text)
    assert reparsed == expr
    assert format_expr(reparsed) == text


@_SETTINGS
@given(clause_blocks(INPUTS))
def test_clause_blocks_round_trip(clauses):
    check_clauses(clauses, INPUTS)
    text = format_clauses(clauses)
    reparsed = parse_clauses(text)
    assert reparsed == clauses
    assert format_clauses(reparsed) == text


@_SETTINGS
@given(expressions(INPUTS, "number", depth=3))
def test_printing_is_independent_of_layout(expr):
    """Extra parentheses, spaces, comments and continuations do not change the canonical text."""
    text = format_expr(expr)
    noisy = f"( {text} )  # a comment"
    assert format_expr(parse_expr(noisy)) == text
    block = f"lbl: REQUIRES \\\n   ({text}) == ({text})   # c\n\n"
    [clause] = parse_clauses(block)
    expected = Clause("lbl", "REQUIRES", Compare(("==",), (expr, expr)))
    assert clause == expected
    assert format_clauses((clause,)) == format_clauses((expected,))


_VOCAB = [
    "(",
    ")",
    ",",
    ".",
    ":",
    "+",
    "-",
    "*",
    "/",
    "^",
    "<",
    "<=",
    "==",
    "!=",
    ">",
    ">=",
    "AND",
    "OR",
    "NOT",
    "IMPLIES",
    "IF",
    "THEN",
    "ELSE",
    "true",
    "false",
    "1",
    "2.5",
    "1e-3",
    "helpfulness",
    "is_safe",
    "response",
    "r",
    "r.is_safe",
    "min",
    "clip",
    "len",
    "log",
    "reward",
    "zscore",
    "rank(",
    "minmax",
    "IN",
    "prompt",
    "run",
]


def _assert_points_into(text: str, err) -> None:
    """The error's line/col/source_line denote a real place in ``text`` (offset-free call)."""
    lines = text.split("\n")
    assert 1 <= err.line <= len(lines)
    assert err.source_line == lines[err.line - 1].rstrip("\r")
    assert 1 <= err.col <= len(err.source_line) + 1


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=string.printable, max_size=40),
        st.lists(st.sampled_from(_VOCAB), max_size=14).map(" ".join),
    )
)
def test_arbitrary_text_fails_only_with_typed_errors(text):
    """Whatever the input, the front end returns a result or raises a typed contract error."""
    try:
        expr = parse_expr(text)
    except ContractSyntaxError as err:
        _assert_points_into(text, err)
        return
    try:
        check_expr(expr, INPUTS, allow_reward=True)
    except ContractTypeError as err:
        _assert_points_into(text, err)
        return
    assert parse_expr(format_expr(expr)) == expr


_CLAUSE_VOCAB = [
    *_VOCAB,
    "REQUIRES",
    "INVARIANT",
    "ENSURES",
    "EXISTS r IN prompt:",
    "FORALL",
    "IN",
    "prompt",
    "PENALTY",
    "SEVERITY",
    "0.5",
    "lbl:",
    "other:",
    "\n",
    "\\\n",
    "# note\n",
    "r.helpfulness",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_CLAUSE_VOCAB), max_size=16).map(" ".join))
def test_arbitrary_clause_blocks_fail_only_with_typed_errors(text):
    try:
        clauses = parse_clauses(text)
    except ContractSyntaxError as err:
        _assert_points_into(text, err)
        return
    try:
        check_clauses(clauses, INPUTS)
    except ContractTypeError as err:
        _assert_points_into(text, err)
        return
    assert parse_clauses(format_clauses(clauses)) == clauses
