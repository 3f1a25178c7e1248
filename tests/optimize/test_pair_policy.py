"""Pair policies: strategies, tie policies, caps, weights, human pairs and the length-balanced subsample.

Property tests (hypothesis, derandomised, fixed array shapes so each strategy compiles once)
check the invariants of docs/contracts.md#selection on random rewards with many ties; the human
strategy and the weights are checked on a small hand-made run whose every count is known.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.errors import DataError
from rlhf_core.optimize import STRATEGIES, PairPolicy, build_pairs, select_pairs
from rlhf_core.optimize.export_lengths import pair_length_bias
from rlhf_core.optimize.pair_rows import balance_lengths, pair_weights

P, C = 6, 5
PROPERTY = settings(max_examples=15, derandomize=True, deadline=None)
GRID = st.tuples(
    st.lists(st.integers(0, 3), min_size=P * C, max_size=P * C),  # few levels: many ties
    st.lists(st.booleans(), min_size=P * C, max_size=P * C),
    st.lists(st.booleans(), min_size=P * C, max_size=P * C),
    st.lists(st.booleans(), min_size=P, max_size=P),
)


def _arrays(grid):
    reward, valid, veto, ok = grid
    reward = np.asarray(reward, np.float32).reshape(P, C) / 2
    valid = ~np.asarray(valid).reshape(P, C) | (np.arange(C) < 2)  # mostly valid, >= 2 per prompt
    vetoed = np.asarray(veto).reshape(P, C) & (np.arange(C) % 2 == 0)
    return reward, valid, vetoed, ~np.asarray(ok) | (np.arange(P) < 4)


def _select(arrays, strategy, **options):
    reward, valid, vetoed, ok = arrays
    sel = jax.device_get(select_pairs(reward, valid, vetoed, ok, strategy, options.pop("margin", 0.0),
                                      jax.random.key(1), **options))
    keep = np.asarray(sel.keep)
    return tuple(np.asarray(a)[keep] for a in (sel.prompt, sel.chosen, sel.rejected, sel.margin, sel.tie))


@pytest.mark.parametrize("strategy", STRATEGIES)
@PROPERTY
@given(grid=GRID, margin=st.sampled_from([0.0, 0.5]), ties=st.booleans(), cap=st.sampled_from([None, 1, 2]))
def test_pair_invariants_under_every_strategy(strategy, grid, margin, ties, cap) -> None:
    arrays = reward, valid, vetoed, ok = _arrays(grid)
    multi = strategy not in ("best_vs_worst", "best_vs_random")
    options = {"margin": margin, "keep_ties": ties, "max_per_prompt": cap if multi else None,
               "threshold": 0.75 if strategy == "threshold" else None}
    p, c, r, m, tie = _select(arrays, strategy, **options)
    # Never a vetoed, invalid or clause-excluded chosen response; the rejected one is a real candidate.
    assert ok[p].all() and valid[p, c].all() and valid[p, r].all() and not vetoed[p, c].any() and (c != r).all()
    strict = ~tie
    assert (reward[p, c] - reward[p, r] > margin)[strict].all()
    assert np.allclose(m, reward[p, c] - reward[p, r])
    # Ties never become pairs under drop; a kept tie is two allowed candidates of equal reward.
    assert ties or not tie.any()
    assert (reward[p, c] == reward[p, r])[tie].all() and not vetoed[p, r][tie].any() and (m[tie] == 0).all()
    counts = np.bincount(p, minlength=P)
    if multi and cap is not None:
        assert counts.max(initial=0) <= cap
        whole = _select(arrays, strategy, **{**options, "max_per_prompt": None})
        for prompt in range(P):  # the cap keeps the largest margins
            kept, all_m = m[p == prompt], whole[3][whole[0] == prompt]
            assert len(kept) == min(cap, len(all_m))
            if len(kept) < len(all_m):
                assert kept.min() >= np.sort(all_m)[::-1][len(kept)]
    elif not multi:
        assert counts.max(initial=0) <= 1
    if strategy == "threshold":
        assert (reward[p, c] >= 0.75).all() and (reward[p, r] < 0.75).all()
    if strategy == "adjacent":  # neighbours in reward order (ties in slot order)
        for prompt, hi, lo in zip(p, c, r, strict=True):
            order = [k for k in np.argsort(-reward[prompt], kind="stable") if valid[prompt, k]]
            assert order.index(lo) == order.index(hi) + 1


def _run(n_prompts: int = 3):
    """Hand-made run: prompts p1..p3, response texts of known lengths, a clause flag on p3."""
    rows = [("p1", "a", 0.9, False, "aaaa"), ("p1", "b", 0.5, False, "bb"), ("p1", "c", 0.7, True, "ccccccc"),
            ("p1", "d", 0.5, False, "ddd"), ("p2", "e", 0.2, False, "e"), ("p2", "f", 0.8, False, "ffffff"),
            ("p3", "g", 0.4, False, "gg"), ("p3", "h", 0.1, False, "hhhhh")]
    scores = pa.table({"prompt_id": [r[0] for r in rows], "response_id": [r[1] for r in rows],
                       "reward": pa.array([r[2] for r in rows], pa.float32()), "veto": [r[3] for r in rows],
                       "v_has_safe": [r[0] == "p3" for r in rows]})
    responses = pa.table({"response_id": [r[1] for r in rows], "prompt": [r[0].upper() for r in rows],
                          "response": [r[4] for r in rows]})
    labelled = [("a", "b", 1, 2.0), ("c", "a", 1, None), ("e", "f", 1, -1.0), ("b", "d", 0, None),
                ("a", "z", 1, None), ("b", "a", None, None), ("g", "h", 1, None), ("c", "b", 0, None)]
    prefs = pa.table({"pair_id": [f"q{i}" for i in range(len(labelled))],
                      "prompt_id": ["p1", "p1", "p2", "p1", "p1", "p1", "p3", "p1"],
                      "response_a_id": [x[0] for x in labelled], "response_b_id": [x[1] for x in labelled],
                      "margin": pa.array([x[3] for x in labelled], pa.float32()),
                      "better": pa.array([x[2] for x in labelled], pa.int8())})
    return scores, responses, prefs


def _human(**policy):
    scores, responses, prefs = _run()
    return build_pairs(scores, responses, PairPolicy(pairing="human", **policy), preferences=prefs,
                       prompt_clauses=["v_has_safe"])


def test_human_pairs_are_filtered_by_the_contract_and_counted() -> None:
    built = _human(weight="label_confidence")
    rows = [(r["chosen_id"], r["rejected_id"], r["kind"], r["disagrees"]) for r in built.table.to_pylist()]
    assert rows == [("a", "b", "pair", False), ("e", "f", "pair", True)]  # e < f: flagged, kept
    assert {k: built.counts[k] for k in ("labelled", "unscored", "unlabelled", "clause_excluded", "label_ties",
                                         "vetoed_chosen", "disagreements_flagged", "pairs")} == {
        "labelled": 8, "unscored": 1, "unlabelled": 1, "clause_excluded": 1, "label_ties": 2,
        "vetoed_chosen": 1, "disagreements_flagged": 1, "pairs": 2}
    assert built.table["weight"].to_pylist() == pytest.approx([1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(-1.0))])
    assert built.table["margin"].to_pylist() == pytest.approx([0.4, -0.6])
    dropped = _human(on_disagreement="drop")
    assert dropped.table["chosen_id"].to_pylist() == ["a"] and dropped.counts["disagreements_dropped"] == 1


def test_human_ties_kept_as_margin_zero_pairs_or_as_kto_examples() -> None:
    keep = _human(ties="keep", weight="margin_sigmoid")
    ties = keep.table.filter(pa.compute.equal(keep.table["kind"], "tie")).to_pylist()
    # b ~ d kept as given; c ~ b puts the allowed b first (c is vetoed).
    assert [(t["chosen_id"], t["rejected_id"], t["margin"], t["weight"]) for t in ties] == [
        ("b", "d", 0.0, 0.5), ("b", "c", 0.0, 0.5)]
    assert all(t["chosen_desirable"] is None and t["rejected_desirable"] is None for t in ties)
    kto = _human(ties="kto", reward_threshold=0.5)
    unpaired = kto.table.filter(pa.compute.equal(kto.table["kind"], "unpaired")).to_pylist()
    # Desirable = allowed and reward >= 0.5: b (0.5) and d (0.5) yes, vetoed c no.
    assert [(u["chosen_id"], u["chosen_desirable"], u["rejected_id"], u["rejected_desirable"])
            for u in unpaired] == [("b", True, "d", True), ("b", True, "c", False)]
    assert kto.counts["unpaired"] == 2 and kto.counts["pairs"] == 2 and kto.lengths.n_pairs == 2


def test_human_pairing_needs_labels_and_a_known_criterion() -> None:
    scores, responses, prefs = _run()
    with pytest.raises(DataError, match="no labelled pairs for pairing: human"):
        build_pairs(scores, responses, PairPolicy(pairing="human"), run_id="r")
    with pytest.raises(DataError, match="set selection.criterion"):
        build_pairs(scores, responses, PairPolicy(pairing="human", criterion="safer"), preferences=prefs)


def test_strategy_rows_carry_policy_columns_and_the_cap() -> None:
    scores, responses, _ = _run()
    built = build_pairs(scores, responses, PairPolicy(pairing="all_pairs", max_pairs_per_prompt=2,
                                                      weight="margin_sigmoid"), prompt_clauses=["v_has_safe"])
    table = built.table.to_pylist()
    assert [(r["chosen_id"], r["rejected_id"]) for r in table] == [("a", "b"), ("a", "d"), ("f", "e")]
    assert all(r["strategy"] == "all_pairs" and r["kind"] == "pair" and r["chosen_desirable"] and
               r["rejected_desirable"] is False for r in table)
    assert [r["weight"] for r in table] == pytest.approx([1 / (1 + math.exp(-m)) for m in (0.4, 0.4, 0.6)])
    assert built.counts["excluded_clause"] == 1 and built.counts["pairs"] == 3


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=40))
def test_length_figures_equal_an_independent_pandas_computation(lengths) -> None:
    frame = pd.DataFrame(lengths, columns=["chosen", "rejected"], dtype="float64")
    got = pair_length_bias(frame["chosen"].to_numpy(), frame["rejected"].to_numpy())
    assert got.n_pairs == len(frame)
    if frame.empty:
        return
    assert got.chosen_longer_share == pytest.approx((frame["chosen"] > frame["rejected"]).mean())
    assert got.rejected_longer_share == pytest.approx((frame["rejected"] > frame["chosen"]).mean())
    assert got.mean_chosen_chars == pytest.approx(frame["chosen"].mean())
    pooled = math.sqrt((frame["chosen"].var() + frame["rejected"].var()) / 2) if len(frame) > 1 else 0.0
    if pooled > 0:
        assert got.cohens_d == pytest.approx((frame["chosen"].mean() - frame["rejected"].mean()) / pooled)
    else:
        assert got.cohens_d is None


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.booleans()), max_size=60),
       st.integers(0, 1000))
def test_length_balance_reaches_fifty_percent_within_one_pair(rows, seed) -> None:
    chosen, rejected, paired = (np.asarray([r[i] for r in rows], dtype=int if i < 2 else bool)
                                for i in range(3))
    keep = balance_lengths(chosen, rejected, paired, seed)
    longer = int((keep & paired & (chosen > rejected)).sum())
    shorter = int((keep & paired & (chosen < rejected)).sum())
    assert abs(longer - shorter) <= 1  # 50 % of the pairs that differ in length, ± one pair
    assert keep[~paired | (chosen == rejected)].all()  # equal lengths and KTO rows are never dropped
    assert longer == min(int((paired & (chosen > rejected)).sum()), int((paired & (chosen < rejected)).sum()))
    assert (balance_lengths(chosen, rejected, paired, seed) == keep).all()  # seeded


def test_weights_reject_an_unknown_rule() -> None:
    assert pair_weights("none", np.array([0.3, -1.0])).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="unknown pair weight"):
        pair_weights("softmax", np.zeros(2))
