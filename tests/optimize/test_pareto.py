"""Pareto evaluator, front geometry, Nash point and regret."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.optimize import (
    hypervolume,
    ideal_utilities,
    knee_point,
    make_pareto_evaluator,
    nash_point,
    non_dominated,
    random_choice_utilities,
    regret,
    simplex_lattice,
    simplex_random,
)


def _problem(p: int = 300, c: int = 4, s: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    utils = rng.normal(size=(p, c, s)).astype(np.float32)
    allowed = rng.random((p, c)) > 0.2
    allowed[0] = False  # a prompt with every candidate vetoed
    return utils, allowed


def _numpy_loop(weights, utils, allowed):
    out = []
    has = allowed.any(axis=1)
    for w in weights:
        score = np.where(allowed, utils @ w, -np.inf)
        c = score.argmax(axis=1)
        out.append(utils[np.arange(len(utils)), c][has].mean(axis=0))
    return np.array(out)


def test_evaluator_matches_numpy_loop_and_respects_veto() -> None:
    utils, allowed = _problem()
    weights = np.asarray(simplex_random(jax.random.key(0), 64, 3))
    got = np.asarray(make_pareto_evaluator(chunk=16)(weights, utils, allowed))
    np.testing.assert_allclose(got, _numpy_loop(weights, utils, allowed), rtol=1e-5, atol=1e-6)
    # Vertex e_s reaches the ideal for stakeholder s (best allowed candidate per prompt).
    ideal = np.asarray(ideal_utilities(utils, allowed))
    vertex = np.asarray(make_pareto_evaluator(chunk=16)(np.eye(3, dtype=np.float32), utils, allowed))
    np.testing.assert_allclose(np.diag(vertex), ideal, rtol=1e-5)
    # Vetoing the best candidate everywhere lowers the ideal.
    best = np.where(allowed, utils[..., 0], -np.inf).argmax(axis=1)
    veto_best = allowed.copy()
    veto_best[np.arange(len(best)), best] = False
    assert float(ideal_utilities(utils, veto_best)[0]) < ideal[0]
    assert np.all(np.asarray(random_choice_utilities(utils, allowed)) < ideal)


def test_simplex_lattice_size_and_sums() -> None:
    grid = simplex_lattice(3, 50)
    assert grid.shape == (1326, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0, rtol=1e-6)
    assert {tuple(r) for r in np.eye(3)} <= {tuple(r) for r in grid}


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25))
def test_non_dominated_matches_brute_force(pts: list[tuple[int, int, int]]) -> None:
    arr = np.array(pts, np.float32)
    # Pad to one shape (one compilation) with points that dominate nothing.
    padded = np.vstack([arr, np.full((25 - len(arr), 3), -1e9, np.float32)])
    mask = np.asarray(_ND(jnp.asarray(padded)))[: len(arr)]
    for i, p in enumerate(arr):
        dominated = any(np.all(q >= p) and np.any(q > p) for q in arr)
        assert mask[i] == (not dominated)


_ND = jax.jit(non_dominated)


def _hv_by_grid(points: np.ndarray, ref: np.ndarray, n: int) -> float:
    """Integer points: count unit cells dominated (exact for integer coordinates)."""
    hi = points.max(axis=0).astype(int)
    count = 0
    for cell in itertools.product(*[range(int(r), int(h)) for r, h in zip(ref, hi, strict=True)]):
        corner = np.array(cell) + 1
        count += bool(np.any(np.all(points >= corner, axis=1)))
    return float(count)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=12))
def test_hypervolume_exact_2d_3d(pts: list[tuple[int, int, int]]) -> None:
    arr = np.array(pts, float)
    ref = np.zeros(3)
    assert hypervolume(arr, ref).value == pytest.approx(_hv_by_grid(arr, ref, 3))
    assert hypervolume(arr[:, :2], ref[:2]).value == pytest.approx(_hv_by_grid(arr[:, :2], ref[:2], 2))


def test_hypervolume_monte_carlo_beyond_three_objectives() -> None:
    pts = np.array([[2, 1, 1, 1], [1, 2, 1, 1], [1, 1, 2, 2]], float)
    exact = _hv_by_grid(pts, np.zeros(4), 4)
    hv = hypervolume(pts, np.zeros(4), key=jax.random.key(0), n_samples=400_000)
    assert not hv.exact and hv.stderr > 0
    assert abs(hv.value - exact) < 4 * hv.stderr
    with pytest.raises(ValueError, match="PRNG key"):
        hypervolume(pts, np.zeros(4))


def test_knee_on_a_bent_front() -> None:
    x = np.linspace(0, 1, 101)
    front = np.stack([x, 1 - x**4], axis=1)  # strong bulge
    k = knee_point(front)
    # Farthest from the chord x + y = 1: maximise 1 - x^4 + x, i.e. x = 4^(-1/3).
    assert front[k, 0] == pytest.approx(4 ** (-1 / 3), abs=0.011)


def test_nash_point_and_regret() -> None:
    outcomes = np.array([[4.0, 1.0], [3.0, 3.0], [1.0, 4.0], [0.5, 0.5]])
    n = nash_point(outcomes, np.array([0.0, 0.0]))
    assert n.index == 1 and n.feasible
    assert not nash_point(outcomes, np.array([5.0, 5.0])).feasible
    np.testing.assert_allclose(regret(np.array([4.0, 4.0]), outcomes[1]), [1.0, 1.0])


def test_compute_pareto_table_and_summary() -> None:
    import pyarrow as pa

    from rlhf_core.optimize import compute_pareto

    utils, allowed = _problem(p=60, c=3, s=3, seed=4)
    p_idx, c_idx = np.nonzero(np.ones((60, 3), bool))
    scores = pa.table({
        "prompt_id": [f"p{p:03d}" for p in p_idx], "response_id": [f"r{p}-{c}" for p, c in zip(p_idx, c_idx, strict=True)],
        "reward": utils[p_idx, c_idx].sum(axis=1),
        **{f"u_{s}": utils[p_idx, c_idx, j] for j, s in enumerate(["a", "b", "c"])},
        "veto": ~allowed[p_idx, c_idx],
        "v_exists_ok": p_idx == 5,  # violation flag: prompt 5 fails a prompt-level clause
    })
    table, summary = compute_pareto(scores, ["a", "b", "c"], contract_weights=[2, 1, 1],
                                    min_weights=300, prompt_clauses=["v_exists_ok"])
    assert table.num_rows == summary["n_weights"] + 1 >= 301
    assert table.column("kind").to_pylist()[-1] == "contract"
    assert sum(table.column("is_knee").to_pylist()) == 1 and sum(table.column("is_nash").to_pylist()) == 1
    assert summary["hypervolume_exact"] and summary["hypervolume"] > 0
    assert all(v >= -1e-6 for v in summary["regret"].values())
    assert summary["prompts_without_allowed"] == 2  # prompt 0 (all vetoed) and prompt 5 (clause)
    assert summary["contract"]["weights"]["a"] == pytest.approx(0.5)
    assert summary["n_front"] > 1 and summary["single_point"] is None


@pytest.mark.timeout(60)
def test_lattice_divisions_terminates_for_every_objective_count() -> None:
    from rlhf_core.optimize.pareto_table import lattice_divisions

    assert lattice_divisions(1, 1000) == 1  # one objective: the lattice is always [1.0]
    assert lattice_divisions(2, 1000) == 999
    assert lattice_divisions(3, 1326) == 50
    with pytest.raises(ValueError, match="at least one objective"):
        lattice_divisions(0, 10)


@pytest.mark.timeout(120)
def test_compute_pareto_with_one_stakeholder_is_one_point() -> None:
    import pyarrow as pa

    from rlhf_core.optimize import compute_pareto

    utils, allowed = _problem(p=40, c=3, s=1, seed=2)
    p_idx, c_idx = np.nonzero(np.ones((40, 3), bool))
    scores = pa.table({
        "prompt_id": [f"p{p:03d}" for p in p_idx],
        "response_id": [f"r{p}-{c}" for p, c in zip(p_idx, c_idx, strict=True)],
        "reward": utils[p_idx, c_idx, 0], "u_only": utils[p_idx, c_idx, 0],
        "veto": ~allowed[p_idx, c_idx],
    })
    table, summary = compute_pareto(scores, ["only"], contract_weights=[1.0], min_weights=1000)
    assert summary["n_weights"] == 1
    assert table.num_rows == 2  # the single lattice point and the contract's own row
    assert summary["n_front"] == 1  # the "front" of one stakeholder is a single point
    assert summary["single_point"] == "one stakeholder: nothing to trade off"  # and says why
    assert summary["hypervolume"] >= 0


def test_a_front_of_one_point_says_why() -> None:
    """Edge shapes: with every response vetoed, or one response per prompt, every weight vector
    picks the same responses; the summary names the reason instead of a one-point 'trade-off'."""
    import pyarrow as pa

    from rlhf_core.optimize import compute_pareto

    def scores(candidates: int, veto: bool) -> pa.Table:
        n = 4 * candidates
        return pa.table({
            "prompt_id": [f"p{i // candidates}" for i in range(n)],
            "response_id": [f"r{i}" for i in range(n)], "reward": np.zeros(n, np.float32),
            "u_a": np.arange(n, dtype=np.float32), "u_b": -np.arange(n, dtype=np.float32),
            "veto": np.full(n, veto)})

    _, vetoed = compute_pareto(scores(3, veto=True), ["a", "b"], min_weights=50)
    assert vetoed["n_front"] == 1 and vetoed["single_point"] == "no prompt has an allowed response"
    _, lone = compute_pareto(scores(1, veto=False), ["a", "b"], min_weights=50)
    assert lone["n_front"] == 1 and lone["single_point"].startswith("every weight vector chooses")
    _, traded = compute_pareto(scores(3, veto=False), ["a", "b"], min_weights=50)
    assert traded["n_front"] > 1 and traded["single_point"] is None
    from rlhf_core.errors import DataError

    with pytest.raises(DataError, match="scores table is empty"):  # not "argmax of an empty sequence"
        compute_pareto(scores(3, veto=False).slice(0, 0), ["a", "b"], min_weights=50)


def test_a_constant_utility_does_not_zero_the_hypervolume() -> None:
    import pyarrow as pa

    from rlhf_core.optimize import compute_pareto

    utils, allowed = _problem(p=50, c=3, s=2, seed=5)
    p_idx, c_idx = np.nonzero(np.ones((50, 3), bool))
    scores = pa.table({
        "prompt_id": [f"p{p:03d}" for p in p_idx],
        "response_id": [f"r{p}-{c}" for p, c in zip(p_idx, c_idx, strict=True)],
        "reward": utils[p_idx, c_idx].sum(axis=1),
        "u_a": utils[p_idx, c_idx, 0], "u_b": utils[p_idx, c_idx, 1],
        "u_safe": np.ones(150, np.float32),  # every allowed response is equally safe
        "veto": ~allowed[p_idx, c_idx],
    })
    _, flat = compute_pareto(scores, ["a", "b", "safe"], min_weights=200)
    assert flat["hypervolume"] == pytest.approx(0.0, abs=1e-4)  # the degenerate reference
    _, floored = compute_pareto(scores, ["a", "b", "safe"], min_weights=200,
                                utility_floor=[-5.0, -5.0, 0.0])
    assert floored["hypervolume"] > 0.5 and floored["hypervolume_ref"][2] < 0.0 + 1e-3
