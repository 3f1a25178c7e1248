"""ENSURES static check: proved, refuted (counterexample confirmed by the compiled function),
unknown."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_core.contract.legal_blocks import parse_clauses, parse_expr
from rlhf_core.contract.legal_blocks.compile_jax import compile_jax
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram
from rlhf_core.contract.static_check import check_ensures, violates
from rlhf_core.scoring import score_table
from tests.contract.compile_strategies import dyadic_columns, programs

INPUTS = (
    InputDecl("helpfulness", "float", 0.0, 4.0),
    InputDecl("verbosity", "float", 0.0, 4.0),
    InputDecl("is_safe", "bool"),
    InputDecl("severity", "int", 0.0, 3.0),
)


def program(rule: str, clauses: str, utilities: tuple[str, ...] = ()) -> ContractProgram:
    texts = utilities or ("helpfulness / 4", "1 - severity / 3", "1 - verbosity / 4")
    weights = (0.5, 0.25, 0.25)
    return ContractProgram(
        name="static",
        inputs=INPUTS,
        stakeholders=tuple(
            StakeholderProgram(f"s{i}", weights[i], parse_expr(t)) for i, t in enumerate(texts)
        ),
        rule=rule,
        clauses=parse_clauses(clauses),
    )


def by_label(prog: ContractProgram) -> dict:
    return {r.label: r for r in check_ensures(prog)}


def test_proved_bounds_and_input_conditions() -> None:
    results = by_label(program("weighted_sum", "\n".join([
        "b: ENSURES 0 <= reward AND reward <= 1.001",
        "c: ENSURES is_safe OR reward >= 0",
        "inv: INVARIANT severity <= 2 PENALTY 0.5",
        "e: ENSURES reward >= -0.501",
    ])))
    assert results["b"].status == "refuted"  # the INVARIANT penalty takes reward below 0
    assert results["c"].status == "refuted"
    assert results["e"].status == "proved" and results["e"].counterexample is None
    plain = by_label(program("weighted_sum", "b: ENSURES -0.001 <= reward AND reward <= 1.001"))
    assert plain["b"].status == "proved"


def test_veto_correlation_is_unknown_not_proved() -> None:
    results = by_label(program("weighted_sum", "safe: REQUIRES is_safe\n"
                               "d: ENSURES is_safe IMPLIES reward >= 0"))
    # True (unsafe rows are the only ones at the floor) but intervals lose the correlation.
    assert results["d"].status == "unknown"


def _confirm(prog: ContractProgram, label: str, row: dict) -> float:
    """Evaluate the compiled function on the counterexample row; return its reward."""
    assert violates(prog, row, label)
    cols = {
        d.name: np.asarray([row[d.name]], dtype=bool if d.dtype == "bool" else np.float32)
        for d in prog.inputs
    }
    out = compile_jax(prog).fn(cols, np.zeros(1, np.int32), 1)
    assert not bool(out.ensures_ok[0])
    return float(out.reward[0])


def test_refuted_with_a_counterexample_the_compiled_function_confirms() -> None:
    prog = program("weighted_sum", "low: ENSURES reward <= 0.5")
    result = by_label(prog)["low"]
    assert result.status == "refuted"
    row = result.counterexample
    assert set(row) == {"helpfulness", "verbosity", "is_safe", "severity"}
    assert 0 <= row["helpfulness"] <= 4 and row["severity"] in (0, 1, 2, 3)
    assert _confirm(prog, "low", row) > 0.5


def test_nash_design_example_is_refuted_near_the_disagreement_point() -> None:
    # docs/contracts.md#nash-bargaining: log(u_i - d_i) dives below -1 near the disagreement point.
    prog = program("nash_bargaining", "safe: REQUIRES is_safe\n"
                   "bounded: ENSURES -1 <= reward AND reward <= 1")
    result = by_label(prog)["bounded"]
    assert result.status == "refuted"
    assert result.reward_bounds[0] == -np.inf
    assert _confirm(prog, "bounded", result.counterexample) < -1
    assert result.counterexample["is_safe"] is True


def test_veto_floor_refutes_a_nonnegative_reward_claim() -> None:
    prog = program("weighted_sum", "safe: REQUIRES is_safe\npos: ENSURES reward >= 0")
    result = by_label(prog)["pos"]
    assert result.status == "refuted" and result.counterexample["is_safe"] is False
    assert _confirm(prog, "pos", result.counterexample) == -1.0


def test_true_but_unprovable_is_unknown() -> None:
    # The utility is identically 0, but interval arithmetic loses the correlation of x - x.
    prog = program(
        "weighted_sum", "z: ENSURES reward <= 0.25",
        utilities=("helpfulness / 4 - helpfulness / 4", "0", "0"),
    )
    result = by_label(prog)["z"]
    assert result.status == "unknown" and result.counterexample is None


def test_no_ensures_no_results() -> None:
    assert check_ensures(program("utilitarian", "safe: REQUIRES is_safe")) == ()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verdicts_are_sound_on_random_programs(data: st.DataObject) -> None:
    prog = data.draw(programs(data.draw(st.sampled_from(["weighted_sum", "nash_bargaining"]))))
    table = pa.table(dyadic_columns(data.draw(st.integers(0, 2**31 - 1)), 64))
    scored = score_table(prog, table)
    for result in check_ensures(prog):
        violated = scored.column(f"v_{result.label}").to_numpy(zero_copy_only=False)
        if result.status == "proved":
            assert not violated.any()
        if result.status == "refuted":
            assert violates(prog, result.counterexample, result.label)
