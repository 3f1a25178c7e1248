"""Agreement metrics against a plain pandas implementation, and the prompt-level bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.evaluate.agreement import (
    agreement,
    bootstrap_accuracy,
    pair_scores,
    prompt_resamples,
    resample_accuracies,
)


def _random_pairs(n: int, n_prompts: int, seed: int, n_signals: int = 3):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_prompts, n)
    groups[:n_prompts] = np.arange(n_prompts)  # every prompt has a pair (dense ids)
    label = rng.choice([1, -1, 0], n, p=[0.45, 0.4, 0.15])
    diffs = np.round(rng.normal(size=(n, n_signals)) + 0.4 * label[:, None], 1)  # some exact ties
    diffs[rng.random((n, n_signals)) < 0.05] = np.nan
    return diffs, label, groups


def _pandas_accuracy(frame: pd.DataFrame, signal: str) -> tuple[float, int, int, float]:
    """Accuracy, strict pairs, label ties and tie agreement, the slow obvious way."""
    rows = frame[frame[signal].notna()]
    strict = rows[rows.label != 0]
    score = []
    for d, lab in zip(strict[signal], strict.label, strict=True):
        score.append(0.5 if d == 0 else float((d > 0) == (lab > 0)))
    ties = rows[rows.label == 0]
    tie_agree = float((ties[signal] == 0).mean()) if len(ties) else float("nan")
    return (float(np.mean(score)) if score else float("nan")), len(strict), len(ties), tie_agree


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300), n_prompts=st.integers(1, 20))
def test_accuracy_and_ties_match_pandas(seed: int, n: int, n_prompts: int) -> None:
    n_prompts = min(n_prompts, n)
    diffs, label, groups = _random_pairs(n, n_prompts, seed)
    stats = agreement(diffs, label, groups, n_resamples=0)
    frame = pd.DataFrame({"label": label, **{f"s{j}": diffs[:, j] for j in range(3)}})
    for j in range(3):
        acc, n_strict, n_ties, tie_agree = _pandas_accuracy(frame, f"s{j}")
        assert stats.n_pairs[j] == n_strict and stats.n_ties[j] == n_ties
        np.testing.assert_allclose(stats.accuracy[j], acc, equal_nan=True)
        np.testing.assert_allclose(stats.tie_agreement[j], tie_agree, equal_nan=True)


def test_reward_tie_counts_half_and_label_ties_are_not_scored() -> None:
    scores = pair_scores(np.array([0.0, 2.0, -1.0, 3.0, np.nan]), np.array([1, 1, 1, 0, -1]))
    np.testing.assert_array_equal(scores[:3], [0.5, 1.0, 0.0])
    assert np.isnan(scores[3]) and np.isnan(scores[4])
    tol = pair_scores(np.array([0.05]), np.array([-1]), tie_tolerance=0.1)
    assert tol[0] == 0.5


def _pandas_bootstrap(frame: pd.DataFrame, signal: str, n_prompts: int, n_resamples: int,
                      seed: int) -> tuple[float, float]:
    """Resample prompts by concatenating whole prompt groups, then the percentile interval."""
    by_prompt = {p: g for p, g in frame.groupby("prompt")}
    accs = []
    for draws in prompt_resamples(n_prompts, n_resamples, seed):
        for row in draws:
            sample = pd.concat([by_prompt[p] for p in row if p in by_prompt])
            accs.append(_pandas_accuracy(sample, signal)[0])
    accs = np.asarray(accs)[np.isfinite(accs)]
    return (float(np.quantile(accs, 0.025, method="lower")),
            float(np.quantile(accs, 0.975, method="higher")))


@pytest.mark.parametrize("seed", [0, 1])
def test_bootstrap_interval_matches_resampling_whole_prompts(seed: int) -> None:
    diffs, label, groups = _random_pairs(240, 30, seed)
    low, high = bootstrap_accuracy(pair_scores(diffs, label), groups, n_resamples=120, seed=7)
    frame = pd.DataFrame({"label": label, "prompt": groups,
                          **{f"s{j}": diffs[:, j] for j in range(3)}})
    for j in range(3):
        ref_low, ref_high = _pandas_bootstrap(frame, f"s{j}", 30, 120, seed=7)
        assert low[j] == pytest.approx(ref_low, abs=1e-12)
        assert high[j] == pytest.approx(ref_high, abs=1e-12)
        assert low[j] <= agreement(diffs, label, groups, n_resamples=0).accuracy[j] <= high[j]


def test_bootstrap_never_splits_the_pairs_of_a_prompt() -> None:
    # Prompt 0 has 50 pairs, all agreeing; prompts 1-9 have one pair each, all disagreeing. A
    # resample that keeps prompt 0's pairs together (drawn k times among 10 draws) has accuracy
    # 50k / (50k + 10 - k); resampling single pairs would produce other values.
    groups = np.array([0] * 50 + list(range(1, 10)))
    scores = pair_scores(np.array([1.0] * 50 + [-1.0] * 9)[:, None], np.ones(59, np.int64))
    allowed = np.array([50 * k / (50 * k + 10 - k) for k in range(11)])
    accs = resample_accuracies(scores, groups, n_resamples=500, seed=3)[:, 0]
    assert np.isin(np.round(accs, 12), np.round(allowed, 12)).all()
    assert len(set(np.round(accs, 12))) >= 4  # the resamples do vary
    low, high = bootstrap_accuracy(scores, groups, n_resamples=500, seed=3)
    assert np.isin(np.round([low[0], high[0]], 12), np.round(allowed, 12)).all()


def test_no_strict_pairs_gives_nan_not_an_error() -> None:
    stats = agreement(np.array([[0.3], [0.0]]), np.array([0, 0]), np.array([0, 1]), n_resamples=50)
    assert np.isnan(stats.accuracy[0]) and stats.n_pairs[0] == 0 and stats.n_ties[0] == 2
    assert stats.tie_agreement[0] == 0.5 and np.isnan(stats.ci_low[0])
