"""DPO pair selection: strategies, veto, clause exclusion, TRL table format."""

from __future__ import annotations

import jax
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.errors import SchemaMismatchError
from rlhf_core.optimize import select_pairs, select_pairs_table

REWARD = np.array([[3.0, 1.0, 2.0, 0.0], [5.0, 5.0, 1.0, 0.0], [1.0, 2.0, 0.0, 0.0]], np.float32)
VALID = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]], bool)


def _sel(strategy, vetoed=None, ok=None, margin=0.0, key=None):
    vetoed = np.zeros_like(VALID) if vetoed is None else vetoed
    ok = np.ones(3, bool) if ok is None else ok
    s = jax.device_get(select_pairs(REWARD, VALID, vetoed, ok, strategy, margin, key))
    k = np.asarray(s.keep)
    return s, list(zip(np.asarray(s.prompt)[k], np.asarray(s.chosen)[k], np.asarray(s.rejected)[k], strict=True))


def test_best_vs_worst_and_veto_of_the_best() -> None:
    _, pairs = _sel("best_vs_worst")
    assert pairs == [(0, 0, 3), (1, 0, 2), (2, 1, 0)]
    vetoed = np.zeros_like(VALID)
    vetoed[0, 0] = True  # the top response of prompt 0 is vetoed: it can only be rejected
    _, pairs = _sel("best_vs_worst", vetoed=vetoed)
    assert (0, 2, 3) in pairs and all(c != 0 for p, c, _ in pairs if p == 0)


def test_all_pairs_above_margin_and_equal_rewards_excluded() -> None:
    s, pairs = _sel("all_above_margin", margin=0.5)
    assert (1, 0, 1) not in pairs and (1, 1, 0) not in pairs  # equal rewards 5 and 5
    assert sorted(p for p in pairs if p[0] == 0) == [(0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 1, 3), (0, 2, 1), (0, 2, 3)]
    assert all(m > 0.5 for m in np.asarray(s.margin)[np.asarray(s.keep)])


def test_clause_exclusion_and_counts() -> None:
    vetoed = np.zeros_like(VALID)
    vetoed[2, :2] = True
    s, pairs = _sel("best_vs_worst", vetoed=vetoed, ok=np.array([True, False, True]))
    assert pairs == [(0, 0, 3)]
    assert (int(s.n_excluded_clause), int(s.n_no_allowed), int(s.n_no_pair)) == (1, 1, 0)


def test_best_vs_random_is_seeded() -> None:
    a = _sel("best_vs_random", key=jax.random.key(7))[1]
    b = _sel("best_vs_random", key=jax.random.key(7))[1]
    assert a == b and all(c == 0 for p, c, _ in a if p == 0)
    with pytest.raises(ValueError, match="PRNG key"):
        select_pairs(REWARD, VALID, VALID, np.ones(3, bool), "best_vs_random")


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["best_vs_worst", "all_above_margin", "best_vs_random"]))
def test_vetoed_response_is_never_chosen(seed: int, strategy: str) -> None:
    rng = np.random.default_rng(seed)
    reward = rng.normal(size=(6, 5)).astype(np.float32)
    valid = rng.random((6, 5)) > 0.2
    vetoed = rng.random((6, 5)) > 0.6
    s = jax.device_get(select_pairs(reward, valid, vetoed, np.ones(6, bool), strategy, 0.0, jax.random.key(seed)))
    k = np.asarray(s.keep)
    p, c, r = np.asarray(s.prompt)[k], np.asarray(s.chosen)[k], np.asarray(s.rejected)[k]
    assert not vetoed[p, c].any() and valid[p, c].all() and valid[p, r].all()
    assert np.all(reward[p, c] > reward[p, r]) and np.all(c != r)


def test_select_pairs_table_is_trl_format() -> None:
    scores = pa.table({"prompt_id": ["p1", "p1", "p2", "p2", "p2"],
                       "response_id": ["a", "b", "c", "d", "e"],
                       "reward": [1.0, 0.0, 0.5, 2.0, -1.0],
                       "veto": [False, False, False, True, False]})
    responses = pa.table({"response_id": ["a", "b", "c", "d", "e"],
                          "prompt": ["P1", "P1", "P2", "P2", "P2"],
                          "response": ["ra", "rb", "rc", "rd", "re"]})
    table, counts = select_pairs_table(scores, responses, "best_vs_worst")
    assert table.column_names[:3] == ["prompt", "chosen", "rejected"]
    rows = {r["prompt_id"]: r for r in table.to_pylist()}
    assert rows["p2"]["chosen_id"] == "c" and rows["p2"]["rejected_id"] == "e"  # d is vetoed
    assert rows["p1"]["chosen"] == "ra" and rows["p1"]["prompt"] == "P1"
    assert counts["pairs"] == 2 and counts["excluded_clause"] == 0
    # A FORALL clause failing on one row of p1 excludes the whole prompt; ids are stamped.
    failing = scores.append_column("v_all_polite", pa.array([False, True, False, False, False]))
    table, counts = select_pairs_table(failing, responses, "best_vs_worst", prompt_clauses=["v_all_polite"],
                                       contract_hash="abc", run_id="r1")
    assert table.column("prompt_id").to_pylist() == ["p2"] and counts["excluded_clause"] == 1
    assert table.column("contract_hash").to_pylist() == ["abc"] and table.column("run_id").to_pylist() == ["r1"]
    with pytest.raises(SchemaMismatchError, match="not in the responses table"):
        select_pairs_table(scores, responses.slice(0, 2), "best_vs_worst")
