"""Tokenizer: kinds, positions, continuations, comments."""

from __future__ import annotations

from rlhf_core.contract.legal_blocks.lexer import KEYWORDS, tokenize


def _kinds(text, **kw):
    return [(t.kind, t.text) for t in tokenize(text, **kw)]


def test_token_kinds():
    toks = _kinds("a<=1.5e-3 AND NOT true != r.x ^ (2) , :")
    assert toks == [
        ("NAME", "a"),
        ("<=", "<="),
        ("NUM", "1.5e-3"),
        ("AND", "AND"),
        ("NOT", "NOT"),
        ("BOOL", "true"),
        ("!=", "!="),
        ("NAME", "r"),
        (".", "."),
        ("NAME", "x"),
        ("^", "^"),
        ("(", "("),
        ("NUM", "2"),
        (")", ")"),
        (",", ","),
        (":", ":"),
        ("EOF", ""),
    ]


def test_keywords_are_case_sensitive():
    assert KEYWORDS >= {
        "REQUIRES",
        "INVARIANT",
        "ENSURES",
        "FORALL",
        "EXISTS",
        "IN",
        "PENALTY",
        "SEVERITY",
        "AND",
        "OR",
        "NOT",
        "IMPLIES",
        "IF",
        "THEN",
        "ELSE",
    }
    assert [k for k, _ in _kinds("and And AND")] == ["NAME", "NAME", "AND", "EOF"]


def test_positions_newlines_comments_and_continuations():
    text = "a + b  # c\n  x \\\n   y\n"
    toks = list(tokenize(text, line=10, indent=2))
    got = [(t.kind, t.line, t.col) for t in toks]
    assert got == [
        ("NAME", 10, 3),
        ("+", 10, 5),
        ("NAME", 10, 7),
        ("NL", 10, 13),
        ("NAME", 11, 5),
        ("NAME", 12, 6),
        ("NL", 12, 7),
        ("EOF", 13, 3),
    ]
    assert toks[5].source_line == "     y"


def test_newlines_are_whitespace_in_expression_mode():
    assert [k for k, _ in _kinds("a\n+\nb", newlines=False)] == ["NAME", "+", "NAME", "EOF"]


def test_first_line_column_offset():
    toks = list(tokenize("a +\nb", col=9, newlines=False))
    assert [(t.line, t.col) for t in toks[:3]] == [(1, 9), (1, 11), (2, 1)]
    assert toks[0].source_line == " " * 8 + "a +"
