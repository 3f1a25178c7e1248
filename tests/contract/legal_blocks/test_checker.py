"""Type checker: accepted programs, the function table, and ASTs built by hand."""

from __future__ import annotations

import pytest

from rlhf_core.contract.legal_blocks import (
    FUNCTIONS,
    TypeEnv,
    check_clause,
    check_clauses,
    check_expr,
    format_expr,
    parse_clauses,
    parse_expr,
)
from rlhf_core.contract.legal_blocks.ast import Binary, Clause, Compare, Name, Num, Pos, Unary
from rlhf_core.contract.program import InputDecl
from rlhf_core.errors import ContractTypeError
from tests.contract.legal_blocks.strategies import DEFAULT_INPUTS as INPUTS


@pytest.mark.parametrize(
    ("text", "ty"),
    [
        ("helpfulness / 4", "number"),
        ("1 - severity / 3", "number"),
        ("is_safe AND severity < 2", "bool"),
        ("(0 <= helpfulness <= 4) == (correctness > 1)", "bool"),
        ("is_safe == flagged != true", "bool"),
        ("IF is_safe THEN helpfulness ELSE -1", "number"),
        ("IF is_safe THEN flagged ELSE NOT flagged", "bool"),
        ("len(response) / 100 + sigmoid(verbosity) + clip(helpfulness, 0, 1)", "number"),
        ("min(1, 2, 3, helpfulness) + max(severity, 0) ^ 2", "number"),
        ("abs(log(exp(sqrt(tanh(floor(ceil(helpfulness)))))))", "number"),
        ("response", "str"),
    ],
)
def test_well_typed_expressions(text, ty):
    assert check_expr(parse_expr(text), INPUTS) == ty


def test_function_table_is_exactly_the_language():
    table = {
        name: (sig.min_arity, sig.max_arity, sig.arg_type, sig.return_type)
        for name, sig in FUNCTIONS.items()
    }
    one = (1, 1, "number", "number")
    assert table == {
        "min": (2, None, "number", "number"),
        "max": (2, None, "number", "number"),
        "abs": one,
        "log": one,
        "exp": one,
        "sqrt": one,
        "sigmoid": one,
        "tanh": one,
        "floor": one,
        "ceil": one,
        "clip": (3, 3, "number", "number"),
        "len": (1, 1, "str", "number"),
    }
    with pytest.raises(TypeError):
        FUNCTIONS["eval"] = FUNCTIONS["abs"]  # type: ignore[index]


def test_clause_kinds_scope_reward_and_quantifier_columns():
    clauses = parse_clauses(
        "safe: REQUIRES is_safe\n"
        "short: INVARIANT len(response) < 2000 PENALTY 0.1\n"
        "bounded: ENSURES -1 <= reward <= 1\n"
        "any: EXISTS r IN prompt: r.is_safe AND len(r.response) > 0\n"
        "all: FORALL r IN prompt: r.severity <= 3\n"
    )
    check_clauses(clauses, INPUTS)


def test_type_env_maps_dtypes_and_rejects_reserved_names():
    env = TypeEnv.from_inputs(INPUTS)
    assert env.inputs["severity"] == "number"
    assert env.inputs["is_safe"] == "bool"
    assert env.inputs["response"] == "str"
    for bad in ("reward", "AND", "true"):
        with pytest.raises(ContractTypeError, match="reserved"):
            TypeEnv.from_inputs((InputDecl(bad, "float"),))


def test_hand_built_clauses_are_validated():
    pos = Pos("f.yaml", 3, 5)
    ok = Name("is_safe")
    with pytest.raises(ContractTypeError, match="duplicate clause label 'a'") as info:
        check_clauses((Clause("a", "REQUIRES", ok), Clause("a", "REQUIRES", ok, pos=pos)), INPUTS)
    assert (info.value.file, info.value.line, info.value.col) == ("f.yaml", 3, 5)
    with pytest.raises(ContractTypeError, match="PENALTY of 'x' must be a finite number >= 0"):
        check_clause(Clause("x", "INVARIANT", ok, -1.0, 1.0), INPUTS)
    with pytest.raises(ContractTypeError, match="apply only to INVARIANT"):
        check_clause(Clause("x", "REQUIRES", ok, 1.0, None), INPUTS)
    with pytest.raises(ContractTypeError, match="has no variable"):
        check_clause(Clause("x", "EXISTS", ok), INPUTS)
    with pytest.raises(ContractTypeError, match="unknown function 'system'"):
        check_expr(parse_expr("abs(1)").__class__("system", (Num(1.0),)), INPUTS)
    with pytest.raises(ContractTypeError, match="finite"):
        check_expr(Num(float("nan")), INPUTS)
    with pytest.raises(ContractTypeError, match="unknown binary operator '%'"):
        check_expr(Binary("%", Num(1.0), Num(2.0)), INPUTS)  # type: ignore[arg-type]
    with pytest.raises(ContractTypeError, match="unknown unary operator '~'"):
        check_expr(Unary("~", Num(1.0)), INPUTS)  # type: ignore[arg-type]
    with pytest.raises(ContractTypeError, match="unknown comparison operator '=~'"):
        check_expr(Compare(("=~",), (Num(1.0), Num(2.0))), INPUTS)  # type: ignore[arg-type]


def test_hand_built_deep_tree_fails_with_typed_error_not_recursion():
    expr = Num(1.0)
    for _ in range(10_000):
        expr = Binary("+", expr, Num(1.0))
    with pytest.raises(ContractTypeError, match="nests deeper than 200 levels"):
        check_expr(expr, INPUTS)
    with pytest.raises(ValueError, match="nests deeper than 200 levels"):
        format_expr(expr)
