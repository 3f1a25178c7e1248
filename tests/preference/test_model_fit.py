"""Unit tests: loss/accuracy semantics, optimisers, splits, features, serialisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.errors import OptimizationDivergedError, SchemaMismatchError
from rlhf_core.preference import (
    FeaturizerConfig,
    FitConfig,
    LinearHead,
    MLPHead,
    PairData,
    RewardModel,
    Standardiser,
    accuracy,
    check_fit,
    expected_calibration_error,
    featurize,
    grouped_kfold,
    grouped_split,
    log_loss,
    make_fit,
    models_from_table,
    models_to_table,
    pair_losses,
)
from rlhf_core.preference.dataset import decode_labels


def _synthetic(n_pairs: int = 600, dim: int = 8, seed: int = 0) -> tuple[PairData, np.ndarray]:
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=dim)
    feats = rng.normal(size=(2 * n_pairs, dim)).astype(np.float32)
    a, b = np.arange(n_pairs) * 2, np.arange(n_pairs) * 2 + 1
    p = 1 / (1 + np.exp(-(feats[a] - feats[b]) @ w_true))
    a_wins = rng.random(n_pairs) < p
    data = PairData(
        feats=feats,
        chosen=np.where(a_wins, a, b).astype(np.int32),
        rejected=np.where(a_wins, b, a).astype(np.int32),
        margin=np.zeros(n_pairs, np.float32),
        target=np.ones(n_pairs, np.float32),
    )
    return data, w_true


def test_loss_matches_trl_formula_with_margin() -> None:
    d, m = jnp.array([2.0, -1.0, 0.0]), jnp.array([0.5, 0.0, 1.0])
    got = pair_losses(d, m, jnp.ones(3))
    np.testing.assert_allclose(got, -np.log(1 / (1 + np.exp(-(np.array([2.0, -1, 0]) - [0.5, 0, 1])))), rtol=1e-6)


def test_tie_loss_is_symmetric_and_minimal_at_zero() -> None:
    d = jnp.array([-1.5, 0.0, 1.5])
    loss = pair_losses(d, jnp.zeros(3), jnp.full(3, 0.5))
    assert float(loss[0]) == pytest.approx(float(loss[2]), rel=1e-6)
    assert float(loss[1]) < float(loss[0])


def test_accuracy_counts_only_strict_wins_and_skips_ties() -> None:
    logits = jnp.array([1.0, 0.0, -1.0, 5.0])
    target = jnp.array([1.0, 1.0, 1.0, 0.5])
    assert float(accuracy(logits, target, jnp.ones(4))) == pytest.approx(1 / 3)
    assert float(log_loss(jnp.zeros(2), jnp.ones(2), jnp.ones(2))) == pytest.approx(np.log(2))


def test_ece_is_small_for_calibrated_and_large_for_overconfident() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=20000)
    p = 1 / (1 + np.exp(-logits))
    wins = rng.random(20000) < p
    oriented = np.where(wins, logits, -logits)  # chosen-minus-rejected
    ones = jnp.ones(20000)
    assert float(expected_calibration_error(jnp.asarray(oriented), ones, ones)) < 0.02
    assert float(expected_calibration_error(jnp.asarray(oriented * 10), ones, ones)) > 0.1


def test_lbfgs_matches_sklearn_logistic_regression() -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    data, _ = _synthetic()
    n, l2 = len(data.chosen), 0.01
    w1 = np.ones(n, np.float32)
    res = make_fit(FitConfig(optimizer="lbfgs", tol=1e-6))(jax.random.key(0), data, w1, 0 * w1, jnp.float32(l2))
    x = data.feats[data.chosen] - data.feats[data.rejected]
    flip = np.arange(n) % 2 == 1
    xs, ys = np.where(flip[:, None], -x, x), np.where(flip, 0, 1)
    ref = sklearn.LogisticRegression(C=1 / (n * l2), fit_intercept=False, tol=1e-10, max_iter=1000).fit(xs, ys)
    np.testing.assert_allclose(np.asarray(res.params.w), ref.coef_[0], atol=2e-3)
    assert bool(res.converged)


def test_adam_early_stopping_keeps_best_validation_params() -> None:
    data, w_true = _synthetic(n_pairs=400, dim=20, seed=3)
    val = (np.arange(400) % 4 == 0).astype(np.float32)
    cfg = FitConfig(optimizer="adam", learning_rate=0.1, max_steps=2000, patience=15)
    res = make_fit(cfg)(jax.random.key(0), data, 1 - val, val, jnp.float32(0.0))
    assert int(res.steps) < 2000  # stopped early
    assert int(res.steps) - int(res.best_step) == 15
    cos = float(np.dot(res.params.w, w_true) / np.linalg.norm(res.params.w) / np.linalg.norm(w_true))
    assert cos > 0.8


def test_mlp_head_learns_a_nonlinear_preference() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(1200, 2)).astype(np.float32)
    r = -np.abs(feats[:, 0])  # prefer responses with x0 near 0: not linear
    a, b = np.arange(600) * 2, np.arange(600) * 2 + 1
    a_wins = r[a] > r[b]
    data = PairData(feats, np.where(a_wins, a, b).astype(np.int32), np.where(a_wins, b, a).astype(np.int32),
                    np.zeros(600, np.float32), np.ones(600, np.float32))
    w = np.ones(600, np.float32)
    lin = make_fit(FitConfig(optimizer="lbfgs"))(jax.random.key(0), data, w, 0 * w, jnp.float32(1e-3))
    mlp = make_fit(FitConfig(optimizer="adam", hidden=16, max_steps=600, learning_rate=0.05))(
        jax.random.key(0), data, w, 0 * w, jnp.float32(1e-4))
    assert isinstance(mlp.params, MLPHead)
    assert float(mlp.train_objective) < float(lin.train_objective) - 0.2


def test_diverged_fit_raises_typed_error() -> None:
    data, _ = _synthetic(n_pairs=50)
    bad = data._replace(feats=np.full_like(data.feats, np.nan))
    w = np.ones(50, np.float32)
    res = make_fit(FitConfig(optimizer="adam", max_steps=5))(jax.random.key(0), bad, w, 0 * w, jnp.float32(0.0))
    with pytest.raises(OptimizationDivergedError, match="non-finite"):
        check_fit(res, "criterion=x")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=10, max_size=80), st.integers(2, 5), st.integers(0, 9))
def test_grouped_folds_never_share_a_prompt(groups: list[int], k: int, seed: int) -> None:
    if len(set(groups)) < k:
        return
    folds = grouped_kfold(groups, k, seed)
    for g in set(groups):
        assert len(set(folds[np.asarray(groups) == g])) == 1
    assert set(folds) == set(range(k))
    val = grouped_split(groups, 0.3, seed)
    assert not set(np.asarray(groups)[val]) & set(np.asarray(groups)[~val])


def test_features_are_deterministic_signed_and_sized() -> None:
    cfg = FeaturizerConfig(word_dim=64, char_dim=64, prompt_dim=16)
    x = featurize(["Hi there", "Hi there"], ["Hello world, hello!", "Completely different text"], cfg)
    y = featurize(["Hi there"], ["Hello world, hello!"], cfg)
    assert x.shape == (2, cfg.dim) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], y[0])
    assert (x[:, :128] < 0).any() and (x[:, :128] > 0).any()  # signed hashing
    assert np.linalg.norm(x[0, :64]) == pytest.approx(1.0, rel=1e-5)
    assert not np.array_equal(x[0], x[1])


def test_label_decoding_conventions() -> None:
    got = decode_labels(["a", "B", "tie", None, "r2", 1, -1, 0, True, "zzz"], ["r1"] * 10, ["r2"] * 10)
    assert got.tolist() == [1, -1, 0, -128, -1, 1, -1, 0, 1, -128]


def test_model_table_round_trip() -> None:
    head = LinearHead(w=jnp.arange(5, dtype=jnp.float32))
    std = Standardiser(3, np.array([1.0, 2.0], np.float32), np.array([0.5, 4.0], np.float32))
    cfg = FeaturizerConfig(word_dim=1, char_dim=1, prompt_dim=0)
    table = models_to_table([RewardModel("better", "bt-better", head, 0.1, cfg, ("score",), std)])
    back = models_from_table(pa.Table.from_batches(table.to_batches()))[0]
    np.testing.assert_array_equal(np.asarray(back.params.w), np.arange(5))
    assert back.featurizer == cfg and back.numeric_columns == ("score",)
    np.testing.assert_array_equal(back.standardiser.scale, std.scale)
    with pytest.raises(SchemaMismatchError):
        models_from_table(table.drop_columns(["param_values"]))
