"""Length bias of a set of preference pairs: is the chosen response simply the longer one?

Reward models and DPO learn length whenever the chosen response is systematically longer, so an
export states how strong that signal is in the pairs it ships (the dataset card's "Length bias"
figures): the share of pairs whose chosen response is longer, the mean lengths, and Cohen's d of
chosen vs rejected length (the mean difference in pooled standard deviations; |d| near 0.2 is
small, 0.5 medium, 0.8 large).

References:
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed., ch. 2.
    Singhal et al. (2023). A Long Way to Go: Investigating Length Correlations in RLHF.
    https://arxiv.org/abs/2310.03716
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["PairLengthBias", "pair_length_bias"]


class PairLengthBias(NamedTuple):
    """Length figures of ``n_pairs`` pairs (lengths in characters, i.e. Unicode code points).

    Attributes:
        n_pairs: Pairs measured.
        chosen_longer_share: Fraction of pairs whose chosen response is strictly longer.
        rejected_longer_share: Fraction whose rejected response is strictly longer (the rest tie).
        mean_chosen_chars: Mean length of the chosen responses.
        mean_rejected_chars: Mean length of the rejected responses.
        cohens_d: (mean chosen - mean rejected) / pooled standard deviation (``ddof=1``); None
            with fewer than two pairs or when every length is equal (the ratio is undefined).
    """

    n_pairs: int
    chosen_longer_share: float | None
    rejected_longer_share: float | None
    mean_chosen_chars: float | None
    mean_rejected_chars: float | None
    cohens_d: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-ready values, floats rounded to 6 decimals."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self._asdict().items()}


def pair_length_bias(chosen_chars: np.ndarray, rejected_chars: np.ndarray) -> PairLengthBias:
    """Length bias of pairs given the two responses' lengths.

    Args:
        chosen_chars: ``(n,)`` lengths of the chosen responses (any integer or float dtype).
        rejected_chars: ``(n,)`` lengths of the rejected responses, pair by pair.

    Returns:
        The figures; shares and means are None for ``n == 0``.

    Raises:
        ValueError: If the two arrays differ in shape or are not one-dimensional.
    """
    chosen = np.asarray(chosen_chars, dtype=np.float64)
    rejected = np.asarray(rejected_chars, dtype=np.float64)
    if chosen.ndim != 1 or chosen.shape != rejected.shape:
        raise ValueError(f"chosen and rejected lengths must be 1-D of one shape, got {chosen.shape} "
                         f"and {rejected.shape}")
    n = int(chosen.size)
    if n == 0:
        return PairLengthBias(0, None, None, None, None, None)
    mean_c, mean_r = float(chosen.mean()), float(rejected.mean())
    d = None
    if n >= 2:
        pooled = math.sqrt((float(chosen.var(ddof=1)) + float(rejected.var(ddof=1))) / 2.0)
        d = (mean_c - mean_r) / pooled if pooled > 0 else None
    return PairLengthBias(
        n_pairs=n,
        chosen_longer_share=float(np.count_nonzero(chosen > rejected)) / n,
        rejected_longer_share=float(np.count_nonzero(rejected > chosen)) / n,
        mean_chosen_chars=mean_c,
        mean_rejected_chars=mean_r,
        cohens_d=d,
    )
