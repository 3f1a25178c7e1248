"""Interval arithmetic: hand cases for every awkward operator, and soundness on random
expressions and random points of the declared box (float32 evaluation lands inside)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.contract import intervals as iv
from rlhf_core.contract.bounds import input_env, reward_bounds, utility_bounds
from rlhf_core.contract.intervals import Interval, interval_of
from rlhf_core.contract.legal_blocks import parse_clauses, parse_expr
from rlhf_core.contract.legal_blocks.lower_array import Lowering
from rlhf_core.contract.program import ContractProgram, StakeholderProgram
from rlhf_core.errors import ContractTypeError
from tests.contract.compile_strategies import INPUTS, bool_exprs, dyadic_columns, num_exprs

INF = math.inf
ENV = {"x": Interval(0.0, 4.0), "y": Interval(-2.0, 2.0), "p": Interval(0.5, 3.0),
       "flag": iv.UNKNOWN, "reward": Interval(-1.0, 1.0)}


def ev(text: str) -> Interval:
    return interval_of(parse_expr(text), ENV)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x / 4", Interval(0.0, 1.0)),
        ("1 - x / 4", Interval(0.0, 1.0)),
        ("x * y", Interval(-8.0, 8.0)),
        ("x / y", Interval(-INF, INF, True)),  # y may be 0 and so may x: 0/0
        ("1 / y", Interval(-INF, INF, False)),
        ("x / p", Interval(0.0, 8.0)),
        ("log(x)", Interval(-INF, math.log(4.0), False)),
        ("log(y)", Interval(-INF, math.log(2.0), True)),
        ("sqrt(y)", Interval(0.0, math.sqrt(2.0), True)),
        ("y ^ 2", Interval(0.0, 4.0)),
        ("y ^ 3", Interval(-8.0, 8.0)),
        ("p ^ y", Interval(1.0 / 9.0, 9.0)),
        ("y ^ 0.5", Interval(-INF, INF, True)),
        ("abs(y)", Interval(0.0, 2.0)),
        ("clip(y, 0, 1)", Interval(0.0, 1.0)),
        ("min(x, y, 1)", Interval(-2.0, 1.0)),
        ("floor(p)", Interval(0.0, 3.0)),
        ("IF flag THEN x ELSE -1", Interval(-1.0, 4.0)),
        ("IF x >= 0 THEN x ELSE -1", Interval(0.0, 4.0)),
        ("exp(1000 * x)", Interval(1.0, INF)),
    ],
)
def test_operator_enclosures(text: str, expected: Interval) -> None:
    got = ev(text)
    assert got.nan == expected.nan
    assert got.lo == pytest.approx(expected.lo) and got.hi == pytest.approx(expected.hi)


def test_zero_times_unbounded_may_be_nan() -> None:
    assert iv.mul(Interval(0.0, 1.0), Interval(1.0, INF)).nan
    assert not iv.mul(Interval(1.0, 2.0), Interval(1.0, INF)).nan
    assert iv.add(Interval(0.0, INF), Interval(-INF, 0.0)).nan


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("x >= 0", "true"),
        ("x > 4", "false"),
        ("x > 1", "unknown"),
        ("0 <= x <= 4", "true"),
        ("x / y > 0", "unknown"),
        ("log(y) != log(y)", "unknown"),  # NaN != NaN is true
        ("NOT (x < 0) AND reward <= 1", "true"),
        ("flag OR x >= 0", "true"),
        ("flag IMPLIES x > 5", "unknown"),
        ("x > 5 IMPLIES flag", "true"),
    ],
)
def test_bool_tristate(text: str, state: str) -> None:
    got = ev(text)
    assert (got.is_true, got.is_false) == {
        "true": (True, False), "false": (False, True), "unknown": (False, False)
    }[state]


def test_unknown_name_is_a_typed_error() -> None:
    with pytest.raises(ContractTypeError, match="no range known for 'zz'"):
        interval_of(parse_expr("zz + 1"), ENV)


def _np_eval(expr: object, cols: dict[str, np.ndarray]) -> np.ndarray:
    lowering = Lowering(np, np.float32, lambda v: np.float32(1) / (np.float32(1) + np.exp(-v)))
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(lowering.expr(expr, cols)), (len(cols["a"]),))


def _box_cols(seed: int) -> dict[str, np.ndarray]:
    cols = dyadic_columns(seed, 256)
    rng = np.random.default_rng(seed + 1)
    for name, (lo, hi) in (("a", (0, 4)), ("b", (-2, 2)), ("c", (0.5, 3))):
        cols[name] = np.concatenate(
            [cols[name][:128], rng.uniform(lo, hi, 128).astype(np.float32)]
        )
    cols["k"] = cols["k"].astype(np.float32)
    return cols


@settings(max_examples=60, deadline=None)
@given(expr=num_exprs(3), seed=st.integers(0, 2**31 - 1))
def test_random_points_land_inside_the_float32_sound_interval(expr: object, seed: int) -> None:
    box = interval_of(expr, input_env(_program_for_env()), rounding=True)
    values = _np_eval(expr, _box_cols(seed)).astype(np.float64)
    nan = np.isnan(values)
    assert box.nan or not nan.any()
    inside = (values[~nan] >= box.lo) & (values[~nan] <= box.hi)
    assert inside.all(), f"{values[~nan][~inside][:3]} outside [{box.lo}, {box.hi}]"


@settings(max_examples=60, deadline=None)
@given(expr=bool_exprs(3), seed=st.integers(0, 2**31 - 1))
def test_bool_verdicts_hold_on_random_points(expr: object, seed: int) -> None:
    verdict = interval_of(expr, input_env(_program_for_env()), rounding=True)
    values = _np_eval(expr, _box_cols(seed))
    if verdict.is_true:
        assert values.all()
    if verdict.is_false:
        assert not values.any()


def _program_for_env(rule: str = "weighted_sum", clauses: str = "") -> ContractProgram:
    return ContractProgram(
        name="t",
        inputs=INPUTS,
        stakeholders=(
            StakeholderProgram("u1", 0.5, parse_expr("a / 4")),
            StakeholderProgram("u2", 0.5, parse_expr("1 - k / 3")),
        ),
        rule=rule,
        clauses=parse_clauses(clauses) if clauses else (),
    )


def test_utility_and_reward_bounds_per_rule() -> None:
    assert utility_bounds(_program_for_env()) == (Interval(0.0, 1.0), Interval(0.0, 1.0))
    exact = {r: reward_bounds(_program_for_env(r), rounding=False) for r in
             ("weighted_sum", "utilitarian", "max_min", "lexicographic", "nash_bargaining")}
    assert exact["weighted_sum"] == Interval(0.0, 1.0)
    assert exact["utilitarian"] == Interval(0.0, 2.0)
    assert exact["max_min"] == Interval(-0.5, 0.0)
    assert exact["lexicographic"].lo == 0.0 and exact["lexicographic"].hi < 1.01
    # Nash: log(u - d) is unbounded below near the disagreement point; the floor joins the hull.
    assert exact["nash_bargaining"].lo == -INF and exact["nash_bargaining"].hi == 0.0


def test_reward_bounds_include_penalties_and_the_floor() -> None:
    inv = _program_for_env(clauses="c: INVARIANT b <= 1 PENALTY 0.5 SEVERITY 2")
    assert reward_bounds(inv, rounding=False) == Interval(-1.0, 1.0)
    req = _program_for_env(clauses="safe: REQUIRES s")
    assert reward_bounds(req, rounding=False) == Interval(-1.0, 1.0)  # floor -1 joins
    always = _program_for_env(clauses="ok: REQUIRES a >= 0")
    assert reward_bounds(always, rounding=False) == Interval(0.0, 1.0)
    never = _program_for_env(clauses="no: REQUIRES a > 4")
    assert reward_bounds(never, rounding=False) == Interval(-1.0, -1.0)
    sound = reward_bounds(_program_for_env())
    assert sound.lo <= 0.0 and 1.0 < sound.hi < 1.0 + 1e-5  # widened for float32 rounding


def test_rounding_keeps_infinite_bounds_infinite() -> None:
    # Regression: widening an infinite bound must not produce NaN bounds.
    assert interval_of(parse_expr("log(0)"), ENV, rounding=True) == Interval(-INF, -INF)
    wide = interval_of(parse_expr("exp(1000 * x)"), ENV, rounding=True)
    assert wide.hi == INF and not math.isnan(wide.lo)
