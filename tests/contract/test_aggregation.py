"""The five aggregation rules on hand-computed cases, the lexicographic comparator and its
ε-scalar, and the parameters derived from declared ranges."""

from __future__ import annotations

import itertools
import math

import jax.numpy as jnp
import numpy as np
import pytest

from rlhf_core.contract.aggregation import (
    AggregationParams,
    aggregate,
    lex_argsort,
    lex_coefficients,
    lex_compare,
    lex_sort_key,
    lexicographic,
    max_min,
    nash_bargaining,
    utilitarian,
    weighted_sum,
)
from rlhf_core.contract.bounds import aggregation_params
from rlhf_core.contract.legal_blocks import parse_expr
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram
from rlhf_core.errors import ContractError


def f32(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def test_weighted_sum_and_utilitarian_by_hand() -> None:
    u = f32([[1.0, 0.5], [0.0, 0.25]])
    np.testing.assert_allclose(weighted_sum(u, (0.25, 0.75)), [0.625, 0.1875])
    np.testing.assert_allclose(utilitarian(f32([[1, 2, 3]])), [6.0])


def test_nash_inside_and_outside_the_bargaining_set() -> None:
    u = f32([[0.5, 0.75], [0.5, 0.25], [0.1, 0.2], [np.nan, 1.0]])
    reward, outside = nash_bargaining(u, (0.5, 0.5), (0.0, 0.25), floor=-1.0)
    assert reward[0] == pytest.approx(0.5 * math.log(0.5) + 0.5 * math.log(0.5), rel=1e-6)
    # u_2 == d_2 is not strictly above the disagreement point; u_2 < d_2 and NaN neither.
    assert outside.tolist() == [False, True, True, True]
    assert reward[1:].tolist() == [-1.0, -1.0, -1.0]


def test_max_min_is_weighted_tchebycheff() -> None:
    u = f32([[0.5, 0.9], [1.0, 1.0]])
    np.testing.assert_allclose(max_min(u, (0.5, 0.5), (1.0, 1.0)), [-0.25, 0.0])


def test_lex_compare_moves_on_only_within_tolerance() -> None:
    order, tol = (0, 1), 0.1
    assert int(lex_compare(f32([0.50, 0.2]), f32([0.55, 0.9]), order, tol)) == -1
    assert int(lex_compare(f32([0.70, 0.0]), f32([0.50, 1.0]), order, tol)) == 1
    assert int(lex_compare(f32([0.50, 0.50]), f32([0.55, 0.45]), order, tol)) == 0
    assert int(lex_compare(f32([0.70, 0.0]), f32([0.50, 1.0]), (1, 0), tol)) == -1
    batch = lex_compare(f32([[0.5, 0.2], [0.7, 0.0]]), f32([[0.55, 0.9], [0.5, 1.0]]), order, tol)
    assert batch.tolist() == [-1, 1]
    traced = lex_compare(jnp.asarray(f32([0.5, 0.2])), jnp.asarray(f32([0.55, 0.9])), order, tol)
    assert int(traced) == -1


def test_lex_coefficients_follow_the_documented_construction() -> None:
    assert lex_coefficients([0, 0], [1, 1], (0, 1), 0.25) == (1.0, 0.125)
    assert lex_coefficients([0, 0, 0], [1, 2, 1], (2, 0, 1), 0.25) == (0.125, 0.0078125, 1.0)
    # A stakeholder whose range is within the tolerance is never decisive.
    assert lex_coefficients([0, 0], [1, 0.2], (0, 1), 0.25) == (1.0, 0.0)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_epsilon_scalar_reproduces_comparator_on_quantised_utilities(order: tuple) -> None:
    tol = 0.25
    lo, hi = [0.0, 0.0, -1.0], [1.0, 2.0, 1.0]
    coef = lex_coefficients(lo, hi, order, tol)
    grids = [np.arange(lo[i], hi[i] + 1e-9, 0.5) for i in range(3)]  # step 0.5 > tol
    u = f32([list(p) for p in itertools.product(*grids)])
    scalar = lexicographic(u, lo, coef)
    a, b = np.repeat(u, len(u), axis=0), np.tile(u, (len(u), 1))
    cmp = lex_compare(a, b, order, tol)
    sa, sb = np.repeat(scalar, len(u)), np.tile(scalar, len(u))
    assert np.array_equal(np.sign(sa - sb).astype(np.int32), cmp)


def test_epsilon_scalar_limit_off_the_tolerance_grid() -> None:
    # The comparator ignores a 0.1 lead within tol=0.25 and decides on stakeholder 2; the scalar
    # still sees the lead: the documented limit for utilities not quantised by the tolerance.
    coef = lex_coefficients([0, 0], [1, 1], (0, 1), 0.25)
    a, b = f32([0.6, 0.0]), f32([0.5, 0.3])
    assert int(lex_compare(a, b, (0, 1), 0.25)) == -1
    sa, sb = lexicographic(np.stack([a, b]), (0, 0), coef)
    assert sa > sb


def test_lex_sort_key_and_argsort_rank_best_first() -> None:
    u = f32([[0.5, 0.0], [1.0, 0.0], [0.5, 1.0], [0.55, 0.5]])
    ranked = lex_argsort(u, (0, 1), 0.1)
    assert ranked.tolist() == [1, 2, 3, 0]
    assert sorted(u.tolist(), key=lex_sort_key((0, 1), 0.1))[-1] == [1.0, 0.0]


def test_aggregate_dispatch_matches_rules_in_numpy_and_jax() -> None:
    u = f32([[0.5, 0.75], [0.25, 1.0]])
    params = AggregationParams("weighted_sum", (0.5, 0.5), (0, 0), (1, 1), (0, 0), (1, 0.5), -1)
    for rule in ("weighted_sum", "utilitarian", "nash_bargaining", "max_min", "lexicographic"):
        p = params._replace(rule=rule)
        np_r, np_out = aggregate(u, p)
        jx_r, jx_out = aggregate(jnp.asarray(u), p)
        np.testing.assert_allclose(np_r, np.asarray(jx_r), rtol=1e-6)
        assert np_out.tolist() == np.asarray(jx_out).tolist()
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        aggregate(u, params._replace(rule="borda"))


def _program(rule: str, utility: str = "x / 4", **kw: object) -> ContractProgram:
    return ContractProgram(
        name="p",
        inputs=(InputDecl("x", "float", 0.0, 4.0), InputDecl("y", "float", None, None)),
        stakeholders=(
            StakeholderProgram("a", 0.5, parse_expr(utility)),
            StakeholderProgram("b", 0.5, parse_expr("1 - x / 8"), disagreement=0.25),
        ),
        rule=rule,
        **kw,
    )


def test_parameters_from_declared_ranges() -> None:
    nash = aggregation_params(_program("nash_bargaining"))
    assert nash.disagreement == (0.0, 0.25)  # default: the utility's lower bound
    tcheb = aggregation_params(_program("max_min"))
    assert tcheb.ideal == (1.0, 1.0)
    lex = aggregation_params(_program("lexicographic", lex_order=("b", "a"), lex_tolerance=0.1))
    assert lex.lex_coef[1] == 1.0 and lex.lex_coef[0] == pytest.approx(0.1 / 2)


@pytest.mark.parametrize(
    ("rule", "kw", "message"),
    [
        ("max_min", {}, "no finite upper bound"),
        ("lexicographic", {}, "no finite lower bound"),
        ("nash_bargaining", {}, "set its disagreement point"),
    ],
)
def test_rules_needing_bounds_reject_unbounded_utilities(rule: str, kw: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        aggregation_params(_program(rule, utility="x * y", **kw))


def test_lexicographic_order_must_name_stakeholders() -> None:
    with pytest.raises(ContractError, match="unknown stakeholder 'c'"):
        aggregation_params(_program("lexicographic", lex_order=("c", "a")))
