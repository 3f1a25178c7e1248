"""The pair policy's per-row columns: kind, KTO labels, weight, and the length-balanced subsample.

Pure NumPy / Arrow helpers shared by every pairing strategy (:mod:`rlhf_core.optimize.pair_set`):

* ``kind``: ``pair`` (a preference pair), ``tie`` (two equally rewarded responses kept as a pair
  with margin 0, ``ties: keep``, for a reward model trained with a margin) or ``unpaired`` (two
  tied responses that only become unpaired KTO examples, ``ties: kto``; pair formats skip them);
* ``chosen_desirable`` / ``rejected_desirable``: the KTO label of each side. A pair labels its
  chosen response desirable and its rejected one undesirable; an unpaired side is desirable when
  it is allowed (not vetoed) and its reward is at least ``reward_threshold``; a kept tie has no
  KTO label (null);
* ``weight``: ``none`` → 1; ``margin_sigmoid`` → σ(margin) (the Bradley–Terry probability of the
  chosen response under the contract's reward, 0.5 for a tie); ``label_confidence`` → σ(|label
  margin|) of a labelled pair, the probability its annotators' stated strength gives the winner
  (1 when the data states no strength: the label is taken at face value);
* the length-balanced subsample (``length_balance: true``): among the pairs whose responses differ
  in length, as many with the longer response chosen as rejected (the larger group is subsampled,
  seeded); pairs of equal length are all kept.

References:
    Bradley, R. A. & Terry, M. E. (1952). Rank analysis of incomplete block designs.
    Ethayarajh et al. (2024). KTO: Model Alignment as Prospect Theoretic Optimization.
    https://arxiv.org/abs/2402.01306
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.lake.catalog import PAIRS_SCHEMA

__all__ = ["KINDS", "POLICY_COLUMNS", "balance_lengths", "complete_pairs", "pair_weights",
           "paired_rows", "side_labels"]

KINDS = ("pair", "tie", "unpaired")
POLICY_COLUMNS = ("weight", "kind", "chosen_desirable", "rejected_desirable", "disagrees")
"""Columns added to ``pairs`` by the pair policy (absent from pairs written before it)."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))).astype(np.float32)


def pair_weights(rule: str, margin: np.ndarray, label_margin: np.ndarray | None = None) -> np.ndarray:
    """Per-pair weights, float32 ``[N]``.

    Args:
        rule: ``none``, ``margin_sigmoid`` or ``label_confidence``.
        margin: Contract reward margins (chosen − rejected), ``[N]``.
        label_margin: The labels' stated strength per pair (NaN where unknown), for
            ``label_confidence``.

    Raises:
        ValueError: For an unknown rule, or ``label_confidence`` without label margins.
    """
    margin = np.asarray(margin, np.float32)
    if rule == "none":
        return np.ones(margin.shape, np.float32)
    if rule == "margin_sigmoid":
        return _sigmoid(margin)
    if rule == "label_confidence":
        if label_margin is None:
            raise ValueError("weight label_confidence needs the labels' margins (pairing: human)")
        strength = np.asarray(label_margin, np.float64)
        return np.where(np.isnan(strength), np.float32(1.0), _sigmoid(np.abs(np.nan_to_num(strength))))
    raise ValueError(f"unknown pair weight {rule!r}; use none, margin_sigmoid or label_confidence")


def side_labels(kind: np.ndarray, allowed: np.ndarray, reward: np.ndarray,
                threshold: float | None, chosen: bool) -> pa.Array:
    """KTO label of one side of every row (see module docstring), a nullable bool array.

    Args:
        kind: ``[N]`` object array of :data:`KINDS`.
        allowed: ``[N]`` the side's response is not vetoed.
        reward: ``[N]`` the side's reward.
        threshold: ``reward_threshold`` (only unpaired rows use it).
        chosen: Labels of the chosen side (else the rejected side).
    """
    kind = np.asarray(kind, dtype=object)
    paired = np.full(kind.shape, chosen)
    above = np.asarray(reward) >= (np.inf if threshold is None else threshold)
    label = np.where(kind == "unpaired", np.asarray(allowed, bool) & above, paired)
    return pa.array(label, pa.bool_(), mask=kind == "tie")


def paired_rows(kind: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """True for the rows exported as pairs (``pair`` and ``tie``; not ``unpaired``)."""
    return pc.fill_null(pc.not_equal(kind, "unpaired"), True)


def balance_lengths(chosen_chars: np.ndarray, rejected_chars: np.ndarray, paired: np.ndarray,
                    seed: int) -> np.ndarray:
    """Keep-mask of a 50/50 length split over the ``paired`` rows (others are always kept).

    Args:
        chosen_chars: ``[N]`` chosen lengths.
        rejected_chars: ``[N]`` rejected lengths.
        paired: ``[N]`` rows that count as pairs.
        seed: Seed of the subsample (``selection.seed``).

    Returns:
        bool ``[N]``: as many kept pairs with the chosen response longer as with it shorter.
    """
    chosen, rejected = np.asarray(chosen_chars), np.asarray(rejected_chars)
    paired = np.asarray(paired, bool)
    longer = np.flatnonzero(paired & (chosen > rejected))
    shorter = np.flatnonzero(paired & (chosen < rejected))
    keep = np.ones(chosen.shape, bool)
    big = longer if len(longer) > len(shorter) else shorter
    n = min(len(longer), len(shorter))
    drop = np.random.default_rng(seed).permutation(big)[n:]
    keep[drop] = False
    return keep


def complete_pairs(table: pa.Table) -> pa.Table:
    """``table`` with the pair-policy columns filled where a part predates them.

    Pairs written before the pair policy were plain preference pairs with no weighting: kind
    ``pair``, weight 1, chosen desirable, rejected undesirable, no disagreement flag.
    """
    n = table.num_rows
    fills = {"weight": pa.repeat(pa.scalar(1.0, pa.float32()), n), "kind": pa.repeat("pair", n),
             "chosen_desirable": pa.repeat(True, n), "rejected_desirable": pa.repeat(False, n),
             "disagrees": pa.repeat(False, n)}
    for name in POLICY_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(PAIRS_SCHEMA.field(name), fills[name])
    return table
