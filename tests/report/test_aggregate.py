"""The report's aggregations against NumPy / SciPy on the same numbers, and its charts as PNGs."""

from __future__ import annotations

import base64

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as sp_stats

from rlhf_core.report import charts
from rlhf_core.report.aggregate import (
    declared_lengths,
    grouped_counts,
    histograms,
    length_bias,
    response_lengths,
)
from rlhf_core.report.render import length_verdict

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tables(n: int, slope: float, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 400, n)
    reward = (slope * lengths / 400 + rng.normal(0, 0.2, n)).astype(np.float32)
    ids = [f"r{i}" for i in range(n)]
    scores = pa.table({"response_id": ids[::-1], "reward": reward[::-1]})  # join must not rely on order
    responses = pa.table({"response_id": ids, "response": ["é" * int(k) for k in lengths]})
    return scores, responses


def test_histograms_match_numpy_and_keep_every_row() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=10_001).astype(np.float32)
    values[:3] = [np.nan, np.inf, -np.inf]  # not finite: left out, like GX's non_finite rule would
    table = pa.table({"reward": values, "u_const": np.full(10_001, 0.25, np.float32)})
    out = histograms(table, ["reward", "u_const"], bins=25)
    edges, counts = out["reward"]
    finite = values[np.isfinite(values)].astype(np.float64)
    ref_counts, ref_edges = np.histogram(finite, bins=25, range=(finite.min(), finite.max()))
    np.testing.assert_allclose(edges, ref_edges, rtol=1e-12)
    # float rounding at bin borders may move a handful of rows by one bin, never lose one
    assert counts.sum() == finite.size
    assert np.abs(counts - ref_counts).sum() <= 4
    c_edges, c_counts = out["u_const"]
    assert c_counts.sum() == 10_001 and c_edges[0] < 0.25 < c_edges[-1]


@pytest.mark.parametrize("slope", [0.0, 2.0])
def test_length_bias_correlations_match_scipy(slope: float) -> None:
    scores, responses = _tables(3_000, slope)
    bias = length_bias(scores, response_lengths(responses), sample=500, seed=3)
    lengths = np.asarray([len(t) for t in responses.column("response").to_pylist()], float)
    reward = np.asarray(scores.column("reward").to_pylist()[::-1], float)
    assert bias.rows == 3_000
    assert bias.pearson == pytest.approx(np.corrcoef(lengths, reward)[0, 1], abs=1e-9)
    assert bias.spearman == pytest.approx(sp_stats.spearmanr(lengths, reward).statistic, abs=1e-9)
    assert len(bias.deciles) == 10
    assert [d[0] for d in bias.deciles] == sorted(d[0] for d in bias.deciles)
    assert len(bias.sample_length) == 500
    again = length_bias(scores, response_lengths(responses), sample=500, seed=3)
    np.testing.assert_array_equal(again.sample_reward, bias.sample_reward)  # seeded sample
    if slope:
        assert bias.spearman > 0.8 and "longer" in length_verdict(bias.spearman)
    else:
        assert abs(bias.spearman) < 0.1 and "No strong" in length_verdict(bias.spearman)


def test_declared_length_column_is_used_only_when_numeric() -> None:
    scores, responses = _tables(400, 1.0)
    assert declared_lengths(responses) is None
    tokens = pa.array([len(t) // 2 if i % 7 else None for i, t in enumerate(responses.column("response").to_pylist())],
                      pa.int32())
    with_attr = responses.append_column("length", tokens)
    bias = length_bias(scores, declared_lengths(with_attr), sample=0)
    assert bias.rows == 400 - len(range(0, 400, 7))  # rows without a declared length are left out
    assert len(bias.sample_length) == 0 and bias.spearman > 0.5
    assert declared_lengths(responses.append_column("length", pa.array(["x"] * 400))) is None


def test_length_bias_of_constant_reward_is_undefined_not_nan() -> None:
    scores, responses = _tables(50, 0.0)
    scores = scores.set_column(1, "reward", pa.array(np.ones(50, np.float32)))
    bias = length_bias(scores, response_lengths(responses))
    assert bias.pearson is None and bias.spearman is None
    assert "undefined" in length_verdict(None)


def test_grouped_counts_largest_first_with_an_example() -> None:
    table = pa.table({"table": ["responses"] * 5 + ["source"],
                      "rule": ["empty_text"] * 3 + ["out_of_range"] * 2 + ["unreadable"],
                      "reason": ["empty"] * 3 + ["range"] * 2 + ["bad json"]})
    rows = grouped_counts(table, ["table", "rule"], example="reason")
    assert [(r["rule"], r["rows"], r["example"]) for r in rows] == [
        ("empty_text", 3, "empty"), ("out_of_range", 2, "range"), ("unreadable", 1, "bad json")]
    assert grouped_counts(table.slice(0, 0), ["rule"]) == []


def test_charts_are_png_data_uris() -> None:
    hist = {"reward": (np.linspace(0, 1, 11), np.arange(10))}
    rng = np.random.default_rng(0)
    pts = rng.random((40, 3))
    for png in (
        charts.histogram_grid(hist),
        charts.rate_bars({"safe": 0.1, "concise": 0.0}, "rates"),
        charts.length_bias(rng.integers(0, 100, 200), rng.random(200), [(10.0, 0.5), (90.0, 0.6)], 0.1, None),
        charts.pareto_front(("a", "b", "c"), pts, pts[:, 0] > 0.5, pts[0], pts[1], None),
    ):
        assert png.startswith(PNG_MAGIC) and len(png) > 2_000
        uri = charts.data_uri(png)
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1]) == png
