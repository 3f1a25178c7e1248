"""Agreement with labels (prompt bootstrap) vs DuckDB SQL; calibration vs scikit-learn.

Run: ``python -m benchmarks.bench_agreement [--quick]``.

**Agreement.** 1M labelled pairs over 250k prompts (``--quick``: 100k over 25k), 6 signals
(a reward and 5 utilities), 15 % label ties, 1,000 bootstrap resamples of prompts. Ours:
:func:`rlhf_core.evaluate.agreement.agreement`. Reference: the same computation in DuckDB SQL in
one run — per-pair scores with ``CASE`` (a tie of the signal counts ½), per-prompt sums with
``GROUP BY``, the resamples as ``B × P`` random prompt draws joined to those sums, accuracy per
resample, and ``quantile_disc`` for the 2.5 / 97.5 % bounds. Both must give the same point
accuracies (checked); the intervals come from different random draws, so they are compared
within a tolerance.

**Calibration.** 1M strict pairs × 5 stakeholders generated from known weights (Bradley–Terry).
Ours: :func:`rlhf_core.evaluate.calibrate.calibrate_weights` (weights on the simplex, scale,
L-BFGS, no cross-validation). Reference: scikit-learn ``LogisticRegression`` on the
utility differences, no intercept (unconstrained weights — the nearest standard model; its
coefficients normalised to sum to 1 for comparison). ``ratio`` = ours / reference wall time.
"""

from __future__ import annotations

import argparse
import time

import duckdb
import numpy as np
import pyarrow as pa

from rlhf_core.contract import load_contract_text
from rlhf_core.evaluate.agreement import agreement
from rlhf_core.evaluate.calibrate import CalibrationConfig, CalibrationData, calibrate_weights

_SQL = """
WITH scored AS (
  SELECT prompt, s, CASE WHEN label = 0 OR d IS NULL THEN NULL
                         WHEN d = 0 THEN 0.5
                         WHEN sign(d) = label THEN 1.0 ELSE 0.0 END AS score
  FROM pairs
),
per_prompt AS (
  SELECT prompt, s, sum(score) AS correct, count(score) AS strict FROM scored GROUP BY ALL
),
draws AS (
  SELECT b, CAST(floor(random() * $n_prompts) AS INTEGER) AS prompt
  FROM range($b) t(b), range($n_prompts) u(i)
),
resampled AS (
  SELECT d.b, p.s, sum(p.correct) / sum(p.strict) AS acc
  FROM draws d JOIN per_prompt p USING (prompt) GROUP BY ALL
)
SELECT s, quantile_disc(acc, 0.025) AS low, quantile_disc(acc, 0.975) AS high,
       (SELECT sum(correct) / sum(strict) FROM per_prompt q WHERE q.s = r.s) AS accuracy
FROM resampled r GROUP BY s ORDER BY s
"""


def _pairs(n: int, n_prompts: int, n_signals: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.sort(rng.integers(0, n_prompts, n))
    groups[:n_prompts] = np.arange(n_prompts)
    groups.sort()
    label = rng.choice(np.array([1, -1, 0], np.int8), n, p=[0.45, 0.40, 0.15])
    diffs = np.round(rng.normal(size=(n, n_signals)) + 0.5 * label[:, None], 2)
    return diffs, label, groups


def bench_agreement(n: int, n_prompts: int, resamples: int) -> dict:
    diffs, label, groups = _pairs(n, n_prompts, 6)
    started = time.perf_counter()
    ours = agreement(diffs, label, groups, n_resamples=resamples)
    t_ours = time.perf_counter() - started
    long = pa.table({"prompt": np.repeat(groups.astype(np.int32), 6),
                     "s": np.tile(np.arange(6, dtype=np.int8), n),
                     "label": np.repeat(label, 6), "d": diffs.ravel()})
    con = duckdb.connect()
    con.register("pairs", long)
    started = time.perf_counter()
    ref = con.execute(_SQL, {"n_prompts": n_prompts, "b": resamples}).fetchall()
    t_ref = time.perf_counter() - started
    con.close()
    point = np.array([r[3] for r in ref])
    assert np.allclose(point, ours.accuracy, atol=1e-9), (point, ours.accuracy)
    width_ours = float(np.mean(ours.ci_high - ours.ci_low))
    width_ref = float(np.mean([r[2] - r[1] for r in ref]))
    return {"what": f"agreement, {n:,} pairs / {n_prompts:,} prompts × 6 signals, "
                    f"{resamples:,} resamples", "ours_s": t_ours, "ref": "DuckDB SQL",
            "ref_s": t_ref, "check": f"CI width {width_ours:.4f} vs {width_ref:.4f}"}


TOY = """
contract: bench
version: 1.0.0
description: five stakeholders over five inputs
inputs: {a: {dtype: float, range: [0, 1]}, b: {dtype: float, range: [0, 1]},
         c: {dtype: float, range: [0, 1]}, d: {dtype: float, range: [0, 1]},
         e: {dtype: float, range: [0, 1]}}
stakeholders:
  - {name: a, weight: 1, utility: a}
  - {name: b, weight: 1, utility: b}
  - {name: c, weight: 1, utility: c}
  - {name: d, weight: 1, utility: d}
  - {name: e, weight: 1, utility: e}
aggregation: {rule: weighted_sum}
approval: {quorum: 1}
"""


def bench_calibration(n: int) -> dict:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    truth = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
    u_a, u_b = rng.random((n, 5)).astype(np.float32), rng.random((n, 5)).astype(np.float32)
    wins = rng.random(n) < 1 / (1 + np.exp(-8.0 * ((u_a - u_b) @ truth)))
    zero = np.zeros(n)
    data = CalibrationData(u_a, u_b, zero.astype(bool), zero.astype(bool), zero, zero,
                           wins.astype(np.float32), rng.integers(0, n // 4, n))
    program = load_contract_text(TOY).program
    started = time.perf_counter()
    ours = calibrate_weights(program, data, CalibrationConfig(folds=0))
    t_ours = time.perf_counter() - started
    x = (u_a - u_b).astype(np.float64)
    started = time.perf_counter()
    ref = LogisticRegression(fit_intercept=False, C=1e6, max_iter=1000).fit(x, wins)
    t_ref = time.perf_counter() - started
    w_ours = np.array([ours.weights[k] for k in "abcde"])
    w_ref = ref.coef_[0] / ref.coef_[0].sum()
    return {"what": f"calibration, {n:,} pairs × 5 stakeholders", "ours_s": t_ours,
            "ref": "sklearn LogisticRegression", "ref_s": t_ref,
            "check": f"max |w − truth| ours {np.abs(w_ours - truth).max():.4f}, "
                     f"sklearn {np.abs(w_ref - truth).max():.4f}"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n, prompts = (100_000, 25_000) if args.quick else (1_000_000, 250_000)
    rows = [bench_agreement(n, prompts, 1000), bench_calibration(n)]
    print("| benchmark | ours (s) | reference | reference (s) | ratio | check |")
    print("|---|---:|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['what']} | {r['ours_s']:.2f} | {r['ref']} | {r['ref_s']:.2f} | "
              f"{r['ours_s'] / r['ref_s']:.2f}× | {r['check']} |")


if __name__ == "__main__":
    main()
