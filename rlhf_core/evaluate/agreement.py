"""Agreement of reward signals with human preference labels, with prompt-level bootstrap CIs.

A labelled pair is ``(a, b, label)`` with ``label = 1`` when the annotators preferred ``a``,
``-1`` when they preferred ``b`` and ``0`` for a tie. A signal (the contract's reward, one
utility, a reward-model score, an input column) agrees with a strict pair when it ranks the two
responses the same way; a tie of the signal counts one half, as in RewardBench. Label ties are
reported apart: the share of them the signal also ties (within ``tie_tolerance``).

Confidence intervals resample *prompts* with replacement (every pair of a drawn prompt comes along,
as often as the prompt is drawn), never single pairs: pairs of one prompt share the prompt and
usually a response, so they are not independent, and a pair-level bootstrap would understate the
uncertainty. Each resample's accuracy is ``sum(weights · correct) / sum(weights · strict)`` over
per-prompt sums, so all signals are resampled with the same draws (paired) in one matrix product.

References:
    Lambert et al., "RewardBench: Evaluating Reward Models for Language Modeling", 2024
    (accuracy on chosen/rejected pairs, ties of the model counted as one half).
    Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 (percentile intervals);
    Field & Welsh, "Bootstrapping clustered data", JRSS-B 69(3), 2007 (resampling clusters).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AgreementStats", "agreement", "bootstrap_accuracy", "pair_scores", "prompt_resamples",
    "resample_accuracies",
]


def pair_scores(diff: np.ndarray, label: np.ndarray, tie_tolerance: float = 0.0) -> np.ndarray:
    """Per-pair agreement of a signal with the labels of strict pairs.

    Args:
        diff: ``signal(a) - signal(b)``, float ``[N]`` or ``[N, S]`` (NaN: signal missing).
        label: ``1`` (a preferred), ``-1`` (b preferred) or ``0`` (tie), int ``[N]``.
        tie_tolerance: ``|diff|`` at or below this is a tie of the signal.

    Returns:
        float64 of ``diff``'s shape: 1 where the signal ranks the pair as labelled, 0.5 where it
        ties, 0 where it disagrees; NaN for label ties and missing signals (not scored).
    """
    diff = np.asarray(diff, np.float64)
    lab = np.asarray(label).reshape((-1,) + (1,) * (diff.ndim - 1))
    tied = np.abs(diff) <= tie_tolerance
    agree = np.sign(diff) == lab
    out = np.where(tied, 0.5, agree.astype(np.float64))
    return np.where((lab == 0) | np.isnan(diff), np.nan, out)


CHUNK = 64
"""Resamples drawn together (one ``[CHUNK, n_prompts]`` array at a time bounds memory)."""


def _draws(n_prompts: int, n_resamples: int, seed: int, k: int) -> np.ndarray:
    """Chunk ``k`` of the bootstrap draws, from its own generator ``default_rng([seed, k])``."""
    rows = min(CHUNK, n_resamples - k * CHUNK)
    return np.random.default_rng([seed, k]).integers(0, n_prompts, size=(rows, n_prompts),
                                                     dtype=np.int32)


def prompt_resamples(n_prompts: int, n_resamples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Bootstrap draws of prompts: chunks of ``[b, n_prompts]`` int32 arrays of prompt indices.

    Each row draws ``n_prompts`` prompt indices uniformly with replacement; the chunks together
    hold ``n_resamples`` rows. Each chunk has its own seeded generator, so chunks can be drawn in
    parallel and the same seed gives the same draws (a reference implementation can replay them).
    """
    for k in range(-(-n_resamples // CHUNK)):
        yield _draws(n_prompts, n_resamples, seed, k)


def _per_prompt(values: np.ndarray, groups: np.ndarray, n_prompts: int) -> np.ndarray:
    """Sum ``values`` ``[N, S]`` per prompt -> ``[P, S]`` (NaN counts as 0)."""
    out = np.zeros((n_prompts, values.shape[1]), np.float64)
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(groups, np.nan_to_num(values[:, j], nan=0.0), n_prompts)
    return out


def resample_accuracies(scores: np.ndarray, groups: np.ndarray, n_resamples: int = 1000,
                        seed: int = 0) -> np.ndarray:
    """Accuracy of each signal in each bootstrap resample of prompts.

    Args:
        scores: Per-pair scores ``[N, S]`` from :func:`pair_scores` (NaN: not scored).
        groups: Dense prompt index of each pair, int ``[N]`` in ``[0, P)``.
        n_resamples: Bootstrap resamples.
        seed: Seed of the prompt draws (:func:`prompt_resamples`).

    Returns:
        float64 ``[n_resamples, S]``; NaN where a resample holds no strict pair of a signal.
    """
    scores = np.asarray(scores, np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    groups = np.asarray(groups, np.int64)
    n_prompts = int(groups.max()) + 1 if groups.size else 0
    if n_resamples <= 0 or n_prompts == 0:
        return np.full((max(n_resamples, 0), scores.shape[1]), np.nan)
    correct = _per_prompt(scores, groups, n_prompts)
    strict = _per_prompt((~np.isnan(scores)).astype(np.float64), groups, n_prompts)
    def one_chunk(k: int) -> np.ndarray:
        draws = _draws(n_prompts, n_resamples, seed, k)
        # How often each prompt was drawn: its pairs' weight in this resample.
        weights = np.empty((len(draws), n_prompts), np.float64)
        for i, row in enumerate(draws):
            weights[i] = np.bincount(row, minlength=n_prompts)
        num, den = weights @ correct, weights @ strict
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)

    # NumPy draws random numbers and BLAS multiplies without the GIL: chunks run on every core.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        out = list(pool.map(one_chunk, range(-(-n_resamples // CHUNK))))
    return np.concatenate(out)


def bootstrap_accuracy(scores: np.ndarray, groups: np.ndarray, n_resamples: int = 1000,
                       seed: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of accuracy per signal, resampling prompts.

    Args:
        scores: Per-pair scores ``[N, S]`` from :func:`pair_scores` (NaN: not scored).
        groups: Dense prompt index of each pair, int ``[N]``.
        n_resamples: Bootstrap resamples (0: no interval, NaNs returned).
        seed: Seed of the prompt draws.
        level: Coverage of the interval.

    Returns:
        ``(low, high)``, float64 ``[S]`` each; NaN where a signal scored no pair. The bounds are
        resample accuracies themselves (the ``lower`` / ``higher`` order statistics), never an
        interpolation between two.
    """
    acc = resample_accuracies(scores, groups, n_resamples, seed)
    n_sig = acc.shape[1] if acc.ndim == 2 else 1
    low, high = np.full(n_sig, np.nan), np.full(n_sig, np.nan)
    alpha = (1.0 - level) / 2.0
    for j in range(n_sig):
        column = acc[:, j][np.isfinite(acc[:, j])]
        if column.size:
            low[j] = np.quantile(column, alpha, method="lower")
            high[j] = np.quantile(column, 1.0 - alpha, method="higher")
    return low, high


@dataclass(frozen=True)
class AgreementStats:
    """Agreement of each signal with one criterion's labels.

    Attributes:
        accuracy: Mean score over strict pairs, ``[S]`` (NaN: no strict pair).
        ci_low: Lower bootstrap bound, ``[S]``.
        ci_high: Upper bootstrap bound, ``[S]``.
        n_pairs: Strict pairs each signal scored, ``[S]``.
        n_ties: Label ties, ``[S]`` (pairs where the signal is present).
        tie_agreement: Share of label ties the signal also ties, ``[S]`` (NaN: no ties).
    """

    accuracy: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_pairs: np.ndarray
    n_ties: np.ndarray
    tie_agreement: np.ndarray


def agreement(diffs: np.ndarray, label: np.ndarray, groups: np.ndarray, *,
              n_resamples: int = 1000, seed: int = 0, tie_tolerance: float = 0.0,
              level: float = 0.95) -> AgreementStats:
    """Accuracy, bootstrap CI and tie agreement of signals against one criterion's labels.

    Args:
        diffs: ``signal(a) - signal(b)`` per pair and signal, float ``[N, S]`` (NaN: missing).
        label: The criterion's labels, int ``[N]`` (1, -1, 0).
        groups: Dense prompt index per pair, int ``[N]``.
        n_resamples: Bootstrap resamples over prompts.
        seed: Bootstrap seed.
        tie_tolerance: ``|diff|`` at or below this is a tie of the signal.
        level: Interval coverage.

    Returns:
        Per-signal statistics.
    """
    diffs = np.asarray(diffs, np.float64)
    if diffs.ndim == 1:
        diffs = diffs[:, None]
    label = np.asarray(label)
    scores = pair_scores(diffs, label, tie_tolerance)
    scored = ~np.isnan(scores)
    n_pairs = scored.sum(axis=0)
    with np.errstate(invalid="ignore"):
        accuracy = np.where(n_pairs > 0, np.nansum(scores, axis=0) / np.maximum(n_pairs, 1), np.nan)
    ties = (label == 0)[:, None] & ~np.isnan(diffs)
    n_ties = ties.sum(axis=0)
    tied_too = ties & (np.abs(diffs) <= tie_tolerance)
    tie_agreement = np.where(n_ties > 0, tied_too.sum(axis=0) / np.maximum(n_ties, 1), np.nan)
    low, high = bootstrap_accuracy(scores, groups, n_resamples, seed, level)
    return AgreementStats(accuracy, low, high, n_pairs.astype(np.int64), n_ties.astype(np.int64),
                          tie_agreement)
