"""Errors and AST nodes point at the right file:line:col, with a caret under the column."""

from __future__ import annotations

import pytest

from rlhf_core.contract.legal_blocks import check_clauses, check_expr, parse_clauses, parse_expr
from rlhf_core.errors import ContractSyntaxError, ContractTypeError
from tests.contract.legal_blocks.strategies import DEFAULT_INPUTS as INPUTS

FILE = "configs/contracts/demo.yaml"
BLOCK = (
    "safe:    REQUIRES is_safe\n"
    "# a comment line\n"
    "\n"
    "concise: INVARIANT verbosity <= 3 AND \\\n"
    "    is_safe + 1 > 0 PENALTY 0.2\n"
)


def _caret_col(err) -> int:
    source, caret = err.caret.split("\n")
    assert source == err.source_line
    assert caret.strip() == "^"
    return caret.index("^") + 1


def test_type_error_on_continuation_line_of_offset_block():
    clauses = parse_clauses(BLOCK, file=FILE, line=20, indent=2)
    with pytest.raises(ContractTypeError) as info:
        check_clauses(clauses, INPUTS)
    err = info.value
    assert (err.file, err.line, err.col) == (FILE, 24, 7)
    assert str(err).startswith(f"{FILE}:24:7: '+' needs a number, found bool 'is_safe'")
    assert err.source_line == "      is_safe + 1 > 0 PENALTY 0.2"
    assert _caret_col(err) == 7
    assert err.source_line[err.col - 1 :].startswith("is_safe")
    assert err.pretty().splitlines()[0] == str(err)


def test_syntax_error_at_end_of_continued_line():
    block = "ok: REQUIRES is_safe\nx: REQUIRES (is_safe OR \\\n  flagged\n"
    with pytest.raises(ContractSyntaxError) as info:
        parse_clauses(block, file=FILE, line=7, indent=4)
    err = info.value
    assert (err.line, err.col) == (9, 14)
    assert "expected ')' to close '(' opened at 8:17, found end of line" in err.message
    assert err.source_line == "      flagged"
    assert _caret_col(err) == 14


def test_expression_with_line_and_column_offset():
    with pytest.raises(ContractTypeError) as info:
        check_expr(parse_expr("helpfulness + bogus", file=FILE, line=12, col=14), INPUTS)
    err = info.value
    assert (err.file, err.line, err.col) == (FILE, 12, 28)
    assert err.source_line == " " * 13 + "helpfulness + bogus"
    assert err.source_line[err.col - 1 :] == "bogus"
    assert _caret_col(err) == 28


def test_column_offset_applies_to_first_line_only():
    with pytest.raises(ContractTypeError) as info:
        check_expr(parse_expr("helpfulness +\n  bogus", file=FILE, line=5, col=3), INPUTS)
    assert (info.value.line, info.value.col) == (6, 3)


def test_lexer_error_uses_offsets():
    with pytest.raises(ContractSyntaxError) as info:
        parse_clauses("a: REQUIRES is_safe\nb: REQUIRES x = 1\n", file=FILE, line=30, indent=2)
    err = info.value
    assert (err.line, err.col) == (31, 17)
    assert _caret_col(err) == 17
    assert err.source_line[err.col - 1] == "="


def test_node_positions_are_recorded():
    [clause] = parse_clauses("\n  lbl: ENSURES reward <= 1 + helpfulness", file=FILE, line=3)
    assert (clause.pos.file, clause.pos.line, clause.pos.col) == (FILE, 4, 3)
    compare = clause.expr
    assert (compare.pos.line, compare.pos.col) == (4, 23)
    total = compare.operands[1]
    assert total.op == "+" and total.pos.col == 28
    assert total.right.pos.col == 30
    assert total.right.pos.source_line == "  lbl: ENSURES reward <= 1 + helpfulness"


def test_unlabelled_clause_position_is_its_keyword():
    clauses = parse_clauses("a: REQUIRES is_safe\n   EXISTS r IN prompt: r.flagged", line=10)
    assert clauses[1].label == "clause_2"
    assert (clauses[1].pos.line, clauses[1].pos.col) == (11, 4)


def test_end_of_input_after_a_trailing_carriage_return_points_into_the_line() -> None:
    """Found by hypothesis: ``"\\r"`` reported column 2 of an empty displayed line."""
    from rlhf_core.contract.legal_blocks import parse_expr
    from rlhf_core.errors import ContractSyntaxError

    for text, col in (("\r", 1), ("a +\r", 4)):
        with pytest.raises(ContractSyntaxError) as info:
            parse_expr(text)
        assert (info.value.line, info.value.col) == (1, col)
        assert info.value.col <= len(info.value.source_line) + 1
