"""Semantics of the compiled JAX contract on hand-computed rows: veto, penalties, quantifiers
(segment reductions broadcast to prompts), ENSURES at run time, the fast path, typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_core.contract.legal_blocks import parse_clauses, parse_expr
from rlhf_core.contract.legal_blocks.ast import Attr, Clause, Compare, Name, Num
from rlhf_core.contract.legal_blocks.compile_jax import compile_jax, evaluate_numpy
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram
from rlhf_core.errors import ContractTypeError, SchemaMismatchError

INPUTS = (
    InputDecl("h", "float", 0.0, 4.0),
    InputDecl("v", "float", 0.0, 4.0),
    InputDecl("safe", "bool"),
    InputDecl("sev", "int", 0.0, 3.0),
    InputDecl("text", "str", 0.0, 1000.0),
)
CLAUSES = """\
req: REQUIRES safe
inv: INVARIANT v <= 3 PENALTY 0.25 SEVERITY 2
ens: ENSURES reward >= 0
any_safe: EXISTS r IN prompt: r.safe AND r.h >= 2
all_short: FORALL r IN prompt: len(r.text) <= 10 + r.h
"""


def make(rule: str = "weighted_sum", clauses: str = CLAUSES) -> ContractProgram:
    return ContractProgram(
        name="hand",
        inputs=INPUTS,
        stakeholders=(
            StakeholderProgram("users", 0.5, parse_expr("h / 4")),
            StakeholderProgram("ops", 0.5, parse_expr("1 - v / 4")),
        ),
        rule=rule,
        clauses=parse_clauses(clauses) if clauses else (),
    )


PROGRAM = make()
COLS = {
    "h": np.array([4, 2, 0, 1, 3, 4], np.float32),
    "v": np.array([0, 4, 2, 0, 0, 4], np.float32),
    "safe": np.array([True, True, False, False, True, True]),
    "sev": np.array([0, 1, 2, 3, 0, 0]),
    "text__len": np.array([3, 3, 3, 3, 30, 3], np.float32),
}
SEG = np.array([0, 0, 1, 1, 2, 2], np.int32)


def test_hand_computed_rows() -> None:
    out = compile_jax(PROGRAM).fn(COLS, SEG, 3, indices_are_sorted=True)
    # prompt 0: rows 0,1 (row 1 violates the INVARIANT: v = 4 > 3 -> 0.25 * 2 penalty)
    # prompt 1: rows 2,3 unsafe -> REQUIRES veto, and no safe row with h >= 2 -> EXISTS fails
    # prompt 2: row 4 has len 30 > 10 + 3 -> FORALL fails for the whole prompt
    np.testing.assert_allclose(out.utilities[:2], [[1.0, 1.0], [0.5, 0.0]])
    np.testing.assert_allclose(out.penalty, [0, 0.5, 0, 0, 0, 0.5])
    np.testing.assert_allclose(out.reward, [1.0, 0.25 - 0.5, -1, -1, -1, -1])
    assert out.veto.tolist() == [False, False, True, True, True, True]
    assert np.asarray(out.violations).tolist() == [
        [False, False, False, False, False],
        [False, True, True, False, False],  # reward -0.25 breaks ENSURES reward >= 0
        [True, False, True, True, False],
        [True, False, True, True, False],
        [False, False, True, False, True],
        [False, True, True, False, True],
    ]
    assert out.ensures_ok.tolist() == [True, False, False, False, False, False]
    assert not np.asarray(out.outside_bargaining_set).any()


def test_numpy_twin_matches_and_compiles_once() -> None:
    compiled = compile_jax(PROGRAM)
    for _ in range(2):
        out = compiled.fn(COLS, SEG, 3, indices_are_sorted=True)
    ref = evaluate_numpy(PROGRAM, COLS, SEG)
    for got, want in zip(out, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want)
    assert compiled.jitted._cache_size() == 1


def test_fast_path_needs_no_segments_and_quantifiers_do() -> None:
    plain = make(clauses="req: REQUIRES safe\ninv: INVARIANT v <= 3 PENALTY 0.25")
    out = compile_jax(plain).fn(COLS)
    np.testing.assert_allclose(out.reward, [1.0, 0.0, -1, -1, 0.875, 0.25])
    with pytest.raises(SchemaMismatchError, match="pass segment_ids"):
        compile_jax(PROGRAM).fn(COLS)
    with pytest.raises(SchemaMismatchError, match="'text__len' is missing"):
        compile_jax(PROGRAM).fn({k: v for k, v in COLS.items() if k != "text__len"}, SEG, 3)


def test_division_by_a_literal_is_the_ieee_quotient() -> None:
    prog = ContractProgram(
        name="div", inputs=(InputDecl("x", "float", 0.0, 10.0),),
        stakeholders=(StakeholderProgram("a", 1.0, parse_expr("x / 3")),), rule="utilitarian",
    )
    x = np.linspace(0, 10, 10001, dtype=np.float32)
    got = np.asarray(compile_jax(prog).fn({"x": x}).reward)
    np.testing.assert_array_equal(got, x / np.float32(3))


def test_nash_rows_outside_the_bargaining_set_get_the_floor() -> None:
    out = compile_jax(make("nash_bargaining", clauses="")).fn(COLS)
    # d = (0, 0): rows with h = 0 or v = 4 have a utility at the disagreement point.
    assert out.outside_bargaining_set.tolist() == [False, True, True, False, False, True]
    np.testing.assert_allclose(out.reward[0], 0.0, atol=1e-7)
    np.testing.assert_allclose(out.reward[3], 0.5 * np.log(0.25), rtol=1e-6)
    assert out.reward[1] == -1.0


def test_bare_input_inside_a_quantifier_is_rejected() -> None:
    bad = Clause("q", "EXISTS", Compare((">",), (Attr("r", "h"), Name("v"))), var="r")
    prog = ContractProgram(
        name="bad", inputs=INPUTS,
        stakeholders=(StakeholderProgram("a", 1.0, Num(1.0)),), rule="utilitarian",
        clauses=(bad,),
    )
    with pytest.raises(ContractTypeError, match="bare input 'v' inside a quantifier"):
        compile_jax(prog).fn(COLS, SEG, 3)
