"""Bradley–Terry fit (optax L-BFGS, float32) vs scikit-learn ``LogisticRegression``, same problem.

Run: ``python -m benchmarks.bench_preference [--quick]``. Pair-difference features
``x = f(chosen) − f(rejected)`` (1M pairs × 64 features; ``--quick``: 100k × 64) drawn from a
seeded Bradley–Terry model. Both minimise ``mean log(1 + exp(−x·w)) + (l2/2)‖w‖²``; sklearn sees
the same rows with every other row sign-flipped and labelled 0 (identical objective), no
intercept, ``C = 1 / (n·l2)``. Both objectives are re-evaluated in float64 NumPy at each solution.
``ratio`` is ours / sklearn wall time (lower is better); "ours, cold" includes JIT compilation.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import LogisticRegression

from rlhf_core.preference import FitConfig, PairData, make_fit


def _objective(x: np.ndarray, w: np.ndarray, l2: float) -> float:
    z = x.astype(np.float64) @ w.astype(np.float64)
    return float(np.mean(np.logaddexp(0.0, -z)) + 0.5 * l2 * np.dot(w, w))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n, d, l2 = (100_000 if args.quick else 1_000_000), 64, 1e-4
    rng = np.random.default_rng(0)
    w_true = rng.normal(size=d) / np.sqrt(d) * 2
    x = rng.normal(size=(n, d)).astype(np.float32)
    wins = rng.random(n) < 1 / (1 + np.exp(-(x @ w_true)))
    diff = np.where(wins[:, None], x, -x).astype(np.float32)  # chosen − rejected

    # Ours: responses = the n difference rows plus one zero row, rejected = the zero row.
    feats = np.vstack([diff, np.zeros((1, d), np.float32)])
    data = PairData(jnp.asarray(feats), jnp.arange(n, dtype=jnp.int32), jnp.full(n, n, jnp.int32),
                    jnp.zeros(n, jnp.float32), jnp.ones(n, jnp.float32))
    fit = make_fit(FitConfig(optimizer="lbfgs", tol=1e-6, max_steps=200))
    w1, w0 = jnp.ones(n, jnp.float32), jnp.zeros(n, jnp.float32)
    t0 = time.perf_counter()
    res = jax.block_until_ready(fit(jax.random.key(0), data, w1, w0, jnp.float32(l2)))
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = jax.block_until_ready(fit(jax.random.key(0), data, w1, w0, jnp.float32(l2)))
    warm = time.perf_counter() - t0

    flip = np.arange(n) % 2 == 1
    xs, ys = np.where(flip[:, None], -diff, diff).astype(np.float64), np.where(flip, 0, 1)
    t0 = time.perf_counter()
    ref = LogisticRegression(C=1 / (n * l2), fit_intercept=False, max_iter=1000).fit(xs, ys)
    sk = time.perf_counter() - t0

    ours_obj = _objective(diff, np.asarray(res.params.w), l2)
    sk_obj = _objective(diff, ref.coef_[0], l2)
    rel = (ours_obj - sk_obj) / abs(sk_obj)
    print(f"BT fit, {n:,} pairs x {d} features, l2={l2} (L-BFGS steps: ours {int(res.steps)}, "
          f"sklearn {int(ref.n_iter_[0])})\n")
    print("| method | wall s | ratio vs sklearn | final objective | rel. diff vs sklearn |")
    print("|---|---|---|---|---|")
    print(f"| scikit-learn LogisticRegression (lbfgs, float64) | {sk:.3f} | 1.00x | {sk_obj:.8f} | 0 |")
    print(f"| ours, optax L-BFGS float32 (warm) | {warm:.3f} | {warm / sk:.2f}x | {ours_obj:.8f} | {rel:+.2e} |")
    print(f"| ours, cold (incl. JIT compile) | {cold:.3f} | {cold / sk:.2f}x | | |")
    print(f"\nfinal loss within 1e-4 relative of sklearn's: {'yes' if rel <= 1e-4 else 'NO'}; "
          f"target <= 1.0x sklearn's time (warm): {'met' if warm <= sk else 'NOT met'}")


if __name__ == "__main__":
    main()
