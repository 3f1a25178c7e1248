"""Prompt-grouped splits: no prompt ever has pairs on both sides of a split.

Pairs that share a prompt share most of their text signal; splitting by row would leak it. Groups
are shuffled with a seeded NumPy generator, so the same seed gives the same split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _group_codes(prompt_ids: Sequence[object] | np.ndarray) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(prompt_ids, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), int(codes.max()) + 1 if len(codes) else 0


def grouped_kfold(prompt_ids: Sequence[object] | np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold index per row, prompts assigned round-robin to folds after a seeded shuffle.

    Args:
        prompt_ids: Group key per row (``[n]``).
        k: Number of folds (>= 2 and at most the number of distinct prompts).
        seed: Shuffle seed.

    Returns:
        int64 ``[n]`` fold in ``0..k-1``.

    Raises:
        ValueError: If ``k`` is out of range.
    """
    codes, n_groups = _group_codes(prompt_ids)
    if k < 2 or k > n_groups:
        raise ValueError(f"grouped_kfold: k={k} needs 2 <= k <= {n_groups} distinct prompts")
    order = np.random.default_rng(seed).permutation(n_groups)
    fold_of_group = np.empty(n_groups, np.int64)
    fold_of_group[order] = np.arange(n_groups) % k
    return fold_of_group[codes]


def grouped_split(
    prompt_ids: Sequence[object] | np.ndarray, val_fraction: float, seed: int
) -> np.ndarray:
    """Boolean validation mask holding about ``val_fraction`` of the prompts.

    Args:
        prompt_ids: Group key per row.
        val_fraction: Share of prompts in validation, in (0, 1).
        seed: Shuffle seed.

    Returns:
        bool ``[n]``: True for validation rows.

    Raises:
        ValueError: If ``val_fraction`` is not in (0, 1) or fewer than 2 prompts exist.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"grouped_split: val_fraction={val_fraction} must be in (0, 1)")
    codes, n_groups = _group_codes(prompt_ids)
    if n_groups < 2:
        raise ValueError(f"grouped_split: {n_groups} distinct prompt(s); need at least 2 to split")
    n_val = min(max(1, round(val_fraction * n_groups)), n_groups - 1)
    val_groups = np.random.default_rng(seed).permutation(n_groups)[:n_val]
    return np.isin(codes, val_groups)
