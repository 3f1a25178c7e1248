"""Malformed Legal-Blocks inputs: each raises a typed error at an exact line and column."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from rlhf_core.contract.legal_blocks import check_clauses, check_expr, parse_clauses, parse_expr
from rlhf_core.errors import ContractSyntaxError, ContractTypeError
from tests.contract.legal_blocks.strategies import DEFAULT_INPUTS as INPUTS

SYN, TYP = ContractSyntaxError, ContractTypeError


def _expr(text: str, expect: str | None = None) -> None:
    check_expr(parse_expr(text), INPUTS, expect=expect)


def _clauses(text: str) -> None:
    check_clauses(parse_clauses(text), INPUTS)


def _utility(text: str) -> None:
    _expr(text, expect="number")


# (id, runner, text, error class, line, col, message fragment)
CASES = [
    (
        "unclosed-paren",
        _expr,
        "(helpfulness + 1",
        SYN,
        1,
        17,
        "expected ')' to close '(' opened at 1:1, found end of expression",
    ),
    (
        "unclosed-paren-clause",
        _clauses,
        "ok: REQUIRES (is_safe OR (flagged)",
        SYN,
        1,
        35,
        "expected ')' to close '(' opened at 1:14, found end of line",
    ),
    ("unmatched-close", _expr, "helpfulness)", SYN, 1, 12, "unmatched ')'"),
    (
        "dangling-plus",
        _expr,
        "helpfulness +",
        SYN,
        1,
        14,
        "expected an expression after '+', found end of expression",
    ),
    (
        "dangling-and",
        _clauses,
        "REQUIRES is_safe AND",
        SYN,
        1,
        21,
        "expected an expression after 'AND', found end of line",
    ),
    (
        "double-operator",
        _expr,
        "helpfulness * / 2",
        SYN,
        1,
        15,
        "expected an expression after '*', found '/'",
    ),
    ("dangling-compare", _expr, "helpfulness < 1 <", SYN, 1, 18, "after '<'"),
    ("unknown-function", _expr, "foo(helpfulness)", SYN, 1, 1, "unknown function 'foo'"),
    (
        "wrong-arity-clip",
        _expr,
        "clip(helpfulness, 0)",
        TYP,
        1,
        1,
        "clip() takes 3 arguments, got 2",
    ),
    (
        "wrong-arity-min",
        _expr,
        "min(helpfulness)",
        TYP,
        1,
        1,
        "min() takes 2 or more arguments, got 1",
    ),
    ("wrong-arity-abs", _expr, "1 + abs(1, 2)", TYP, 1, 5, "abs() takes 1 argument, got 2"),
    ("wrong-arity-empty", _expr, "max()", TYP, 1, 1, "got 0"),
    (
        "dunder-import",
        _expr,
        "__import__('os')",
        SYN,
        1,
        1,
        "identifier '__import__' is not allowed",
    ),
    (
        "dunder-import-system",
        _expr,
        "__import__('os').system('touch X')",
        SYN,
        1,
        1,
        "names starting with '__' are reserved",
    ),
    ("dunder-attribute", _expr, "helpfulness.__class__", SYN, 1, 13, "'__class__'"),
    ("dunder-name", _expr, "__builtins__", SYN, 1, 1, "'__builtins__'"),
    ("os-system", _expr, "os.system", TYP, 1, 1, "attribute access is only allowed"),
    (
        "os-system-call",
        _expr,
        "os.system('ls')",
        SYN,
        1,
        10,
        "expected an operator or end of expression, found '('",
    ),
    (
        "undeclared-name",
        _expr,
        "helpfulness + bogus",
        TYP,
        1,
        15,
        "unknown name 'bogus'; declared inputs: helpfulness, correctness",
    ),
    (
        "bool-plus-number",
        _expr,
        "is_safe + 1",
        TYP,
        1,
        1,
        "'+' needs a number, found bool 'is_safe'",
    ),
    (
        "number-and-bool",
        _expr,
        "helpfulness AND is_safe",
        TYP,
        1,
        1,
        "'AND' needs a bool, found number 'helpfulness'",
    ),
    ("not-number", _expr, "NOT helpfulness", TYP, 1, 5, "'NOT' needs a bool"),
    (
        "eq-mixed-types",
        _expr,
        "helpfulness == is_safe",
        TYP,
        1,
        16,
        "'==' with a number on its left needs a number, found bool 'is_safe'",
    ),
    (
        "if-branch-types",
        _expr,
        "IF is_safe THEN 1 ELSE true",
        TYP,
        1,
        24,
        "needs a number, found bool",
    ),
    (
        "if-number-condition",
        _expr,
        "IF helpfulness THEN 1 ELSE 2",
        TYP,
        1,
        4,
        "the IF condition needs a bool",
    ),
    (
        "len-of-number",
        _expr,
        "len(helpfulness)",
        TYP,
        1,
        5,
        "len() needs a str column, found number",
    ),
    ("str-arithmetic", _expr, "response + 1", TYP, 1, 1, "str values may only be used as len(...)"),
    ("bare-function", _expr, "log + 1", TYP, 1, 1, "function 'log' must be called"),
    ("attr-outside-quantifier", _expr, "helpfulness.x", TYP, 1, 1, "attribute access"),
    ("utility-is-bool", _utility, "is_safe", TYP, 1, 1, "expected a number expression, found bool"),
    (
        "reward-in-utility",
        _utility,
        "reward * 2",
        TYP,
        1,
        1,
        "'reward' may only be used inside ENSURES",
    ),
    (
        "reward-in-requires",
        _clauses,
        "r1: REQUIRES reward > 0",
        TYP,
        1,
        14,
        "'reward' may only be used inside ENSURES",
    ),
    (
        "quantifier-var-outside",
        _clauses,
        "q: EXISTS r IN prompt: r.is_safe\nREQUIRES r.is_safe",
        TYP,
        2,
        10,
        "only allowed on the variable of the enclosing FORALL/EXISTS",
    ),
    ("quantifier-var-in-utility", _utility, "r.helpfulness", TYP, 1, 1, "attribute access"),
    (
        "bare-column-in-quantifier",
        _clauses,
        "EXISTS r IN prompt: is_safe",
        TYP,
        1,
        21,
        "inside EXISTS r IN prompt use r.<column>",
    ),
    ("bare-var-in-quantifier", _clauses, "FORALL r IN prompt: r", TYP, 1, 21, "use r.<column>"),
    (
        "unknown-column-in-quantifier",
        _clauses,
        "EXISTS r IN prompt: r.nope",
        TYP,
        1,
        21,
        "unknown column 'nope'",
    ),
    (
        "quantifier-shadows-input",
        _clauses,
        "EXISTS helpfulness IN prompt: helpfulness.is_safe",
        TYP,
        1,
        1,
        "shadows a declared input",
    ),
    (
        "quantifier-domain",
        _clauses,
        "EXISTS r IN dataset: r.is_safe",
        SYN,
        1,
        13,
        "expected 'prompt' after IN",
    ),
    (
        "duplicate-labels",
        _clauses,
        "a: REQUIRES is_safe\na: REQUIRES flagged",
        SYN,
        2,
        1,
        "duplicate clause label 'a' (first used at 1:1)",
    ),
    (
        "generated-label-collision",
        _clauses,
        "clause_2: REQUIRES is_safe\nREQUIRES flagged",
        SYN,
        2,
        1,
        "would be labelled 'clause_2'",
    ),
    (
        "missing-expression",
        _clauses,
        "REQUIRES",
        SYN,
        1,
        9,
        "expected an expression after 'REQUIRES', found end of line",
    ),
    (
        "penalty-on-requires",
        _clauses,
        "REQUIRES is_safe PENALTY 2",
        SYN,
        1,
        18,
        "PENALTY applies only to INVARIANT clauses, not REQUIRES",
    ),
    (
        "negative-penalty",
        _clauses,
        "INVARIANT is_safe PENALTY -1",
        SYN,
        1,
        27,
        "expected a non-negative number after PENALTY, found '-'",
    ),
    (
        "penalty-twice",
        _clauses,
        "INVARIANT is_safe PENALTY 1 PENALTY 2",
        SYN,
        1,
        29,
        "PENALTY given twice",
    ),
    (
        "clause-body-number",
        _clauses,
        "REQUIRES helpfulness",
        TYP,
        1,
        10,
        "must be bool, found number",
    ),
    ("ensures-body-number", _clauses, "ENSURES reward", TYP, 1, 9, "must be bool, found number"),
    (
        "deep-parens",
        _expr,
        "(" * 10_000 + "1" + ")" * 10_000,
        SYN,
        1,
        201,
        "nests deeper than 200 levels",
    ),
    ("deep-unary", _expr, "-" * 10_000 + "1", SYN, 1, 201, "nests deeper than 200 levels"),
    (
        "deep-not",
        _clauses,
        "REQUIRES " + "NOT " * 10_000 + "is_safe",
        SYN,
        1,
        810,
        "nests deeper than 200 levels",
    ),
    ("long-chain", _expr, " + ".join(["1"] * 300), SYN, 1, 395, "nests deeper than 200 levels"),
    (
        "megabyte-expression",
        _expr,
        "1 + " * 262_144 + "1",
        SYN,
        1,
        65_537,
        "longer than 65536 characters",
    ),
    (
        "megabyte-clause",
        _clauses,
        "ok: REQUIRES is_safe\nbig: REQUIRES " + "is_safe OR " * 90_000 + "is_safe",
        SYN,
        2,
        65_537,
        "clause is longer than 65536 characters",
    ),
    ("single-quotes", _expr, "response == 'abc'", SYN, 1, 13, "string literals are not supported"),
    ("double-quotes", _expr, '"abc"', SYN, 1, 1, "string literals are not supported"),
    ("semicolon", _expr, "is_safe; flagged", SYN, 1, 8, "';' is not allowed"),
    ("single-equals", _expr, "severity = 3", SYN, 1, 10, "use '==' to compare"),
    ("python-power", _expr, "helpfulness ** 2", SYN, 1, 13, "use '^' for powers"),
    ("at-sign", _expr, "helpfulness @ 2", SYN, 1, 13, "unexpected character '@'"),
    ("brackets", _expr, "[1]", SYN, 1, 1, "brackets are not supported"),
    ("backslash-mid-line", _expr, "is_safe \\ AND flagged", SYN, 1, 9, "continues a line only"),
    ("non-ascii-operator", _expr, "helpfulness \u2265 3", SYN, 1, 13, "U+2265"),
    ("non-ascii-space", _expr, "is_safe\u00a0AND flagged", SYN, 1, 8, "U+00A0"),
    ("control-characters", _expr, "\x00\x01", SYN, 1, 1, "U+0000"),
    ("malformed-number", _expr, "1.2.3 + helpfulness", SYN, 1, 1, "malformed number '1.2.3'"),
    ("number-glued-to-name", _expr, "3x", SYN, 1, 1, "malformed number '3x'"),
    ("number-out-of-range", _expr, "1e999", SYN, 1, 1, "out of range"),
    ("empty-expression", _expr, "", SYN, 1, 1, "expected an expression, found end of expression"),
    ("comment-only-expression", _expr, "   # nothing", SYN, 1, 13, "expected an expression"),
    (
        "empty-clause",
        _clauses,
        "safe:",
        SYN,
        1,
        6,
        "expected REQUIRES, INVARIANT, ENSURES, FORALL or EXISTS, found end of line",
    ),
    (
        "unknown-keyword",
        _clauses,
        "ASSERT is_safe",
        SYN,
        1,
        1,
        "expected REQUIRES, INVARIANT, ENSURES, FORALL or EXISTS or a 'label:', found 'ASSERT'",
    ),
    (
        "lowercase-keyword",
        _clauses,
        "requires is_safe",
        SYN,
        1,
        1,
        "keywords are upper-case: REQUIRES",
    ),
    ("lowercase-and", _expr, "is_safe and flagged", SYN, 1, 9, "keywords are upper-case: AND"),
    ("not-after-compare", _expr, "is_safe == NOT flagged", SYN, 1, 12, "NOT cannot appear here"),
    (
        "missing-then",
        _expr,
        "IF is_safe 1 ELSE 2",
        SYN,
        1,
        12,
        "expected THEN after the IF condition",
    ),
    (
        "missing-else",
        _expr,
        "IF is_safe THEN 1",
        SYN,
        1,
        18,
        "expected ELSE after the THEN branch (IF at 1:1)",
    ),
    ("stray-comma", _expr, "1, 2", SYN, 1, 2, "found ','"),
    (
        "unclosed-call",
        _expr,
        "min(1, 2",
        SYN,
        1,
        9,
        "expected ',' or ')' to close 'min(' opened at 1:1, found end of expression",
    ),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("runner", "text", "cls", "line", "col", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_input_raises_typed_error_at_position(runner, text, cls, line, col, fragment):
    with pytest.raises(cls) as info:
        runner(text)
    err = info.value
    assert type(err) is cls
    assert fragment in err.message
    assert (err.line, err.col) == (line, col)
    assert str(err).startswith(f"<string>:{line}:{col}: ")
    assert err.source_line is not None
    assert "\n" not in str(err)


def test_at_least_thirty_distinct_malformed_inputs():
    assert len({case[2] for case in CASES}) >= 30


def test_error_caret_and_source_line_are_bounded_for_huge_input():
    with pytest.raises(SYN) as info:
        parse_expr("1 + " * 262_144 + "1")
    assert len(info.value.source_line) < 70_000
    assert info.value.caret.endswith("^")


def test_parsing_hostile_text_executes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A canary file is never created, and eval/exec/compile are never called."""
    canary = tmp_path / "X"
    called: list[str] = []

    def forbid(name):
        def guard(*args, **kwargs):
            called.append(name)
            raise AssertionError(f"{name} called")

        return guard

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbid(name))
    payloads = [
        f"__import__('os').system('touch {canary}')",
        f"os.system('touch {canary}')",
        f"REQUIRES __import__('os').system('touch {canary}')",
        "open.__globals__",
        "(lambda: 1)()",
        "getattr(helpfulness, 'x')",
    ]
    for payload in payloads:
        with pytest.raises((SYN, TYP)):
            _expr(payload)
        with pytest.raises((SYN, TYP)):
            _clauses(payload)
    assert not canary.exists()
    assert called == []


def test_front_end_source_never_calls_eval_or_exec():
    import io
    import tokenize as pytokenize

    package = Path(check_expr.__code__.co_filename).parent
    front_end = (
        "lexer",
        "expressions",
        "parser",
        "checker",
        "printer",
        "walk",
        "functions",
        "limits",
        "ast",
    )
    for path in (package / f"{name}.py" for name in front_end):
        tokens = list(pytokenize.generate_tokens(io.StringIO(path.read_text()).readline))
        bare = {
            tok.string
            for prev, tok in zip(tokens, tokens[1:], strict=False)
            if tok.type == pytokenize.NAME and prev.string != "."
        }
        assert not bare & {"eval", "exec", "compile", "__import__", "getattr", "globals"}, path
