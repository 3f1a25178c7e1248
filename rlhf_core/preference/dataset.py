"""From normalised Arrow tables (``responses``, ``preferences``) to :class:`PairData` arrays.

Label decoding (one label column per criterion, "which of a/b wins"):

* strings ``"a"`` / ``"b"`` / ``"tie"`` (case-insensitive),
* integers: ``1`` → a wins, ``-1`` → b wins, ``0`` → tie (``2`` is read as b wins as well),
* booleans: True → a wins, False → b wins,
* a winner response id equal to ``response_a_id`` / ``response_b_id``,
* null → the pair is skipped for that criterion (counted).

Ties: ``ties="drop"`` removes them (the TRL default), ``ties="half"`` keeps them as target 0.5.
Feature columns: hashed text (:mod:`rlhf_core.preference.features`) plus numeric attribute columns;
the dense columns (length features and attributes) are standardised with training statistics that
travel with the fitted parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from rlhf_core.errors import SchemaMismatchError
from rlhf_core.preference.features import N_LENGTH_FEATURES, FeaturizerConfig, featurize
from rlhf_core.preference.model import PairData

_A_WINS = {"a", "response_a", "first"}
_B_WINS = {"b", "response_b", "second"}
_TIES = {"tie", "draw", "equal", "="}


@dataclass(frozen=True)
class PairArrays:
    """NumPy form of one criterion's pairs, plus bookkeeping for splits and reports.

    Attributes:
        data: Pair data (NumPy arrays; JAX accepts them as-is).
        prompt_ids: Prompt id per pair (for grouped splits).
        pair_ids: Pair id per pair.
        n_skipped: Pairs dropped (null label, unknown response id, or a dropped tie).
        n_ties: Tie labels seen.
    """

    data: PairData
    prompt_ids: np.ndarray
    pair_ids: np.ndarray
    n_skipped: int
    n_ties: int


def _require(table: pa.Table, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SchemaMismatchError(
            f"{name} table lacks column(s) {missing}; it has {table.column_names} "
            "(ingest with an adapter or map the columns)"
        )


def decode_labels(labels: Sequence[object], a_ids: Sequence[str], b_ids: Sequence[str]) -> np.ndarray:
    """Label per pair as int8: 1 a wins, -1 b wins, 0 tie, -128 unknown/null."""
    out = np.full(len(labels), -128, np.int8)
    for i, (lab, a, b) in enumerate(zip(labels, a_ids, b_ids, strict=True)):
        if lab is None:
            continue
        if isinstance(lab, bool | np.bool_):
            out[i] = 1 if lab else -1
        elif isinstance(lab, int | np.integer | float | np.floating):
            out[i] = {1: 1, -1: -1, 0: 0, 2: -1}.get(int(lab), -128)
        else:
            s = str(lab)
            low = s.strip().lower()
            if s == a or low in _A_WINS:
                out[i] = 1
            elif s == b or low in _B_WINS:
                out[i] = -1
            elif low in _TIES:
                out[i] = 0
    return out


@dataclass(frozen=True)
class Standardiser:
    """Mean / scale of the dense feature columns (the rest pass through)."""

    start: int
    mean: np.ndarray
    scale: np.ndarray

    def apply(self, feats: np.ndarray) -> np.ndarray:
        """Standardise columns ``start:`` in a copy of ``feats``."""
        out = feats.copy()
        out[:, self.start :] = (out[:, self.start :] - self.mean) / self.scale
        return out

    @classmethod
    def fit(cls, feats: np.ndarray, start: int) -> Standardiser:
        """Statistics of columns ``start:`` (unit scale where a column is constant)."""
        dense = feats[:, start:].astype(np.float64)
        std = dense.std(axis=0)
        return cls(start, dense.mean(axis=0).astype(np.float32),
                   np.where(std > 1e-12, std, 1.0).astype(np.float32))


def response_features(
    responses: pa.Table, featurizer: FeaturizerConfig, numeric_columns: Sequence[str]
) -> np.ndarray:
    """Raw (unstandardised) feature matrix ``[n_responses, featurizer.dim + len(numeric)]``."""
    _require(responses, ["response_id", "prompt", "response", *numeric_columns], "responses")
    text = featurize(
        responses.column("prompt").to_pylist(), responses.column("response").to_pylist(), featurizer
    )
    if not numeric_columns:
        return text
    numeric = np.stack(
        [
            np.nan_to_num(responses.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False))
            for c in numeric_columns
        ],
        axis=1,
    ).astype(np.float32)
    return np.concatenate([text, numeric], axis=1)


def dense_start(featurizer: FeaturizerConfig) -> int:
    """First dense (standardised) column: length features, then numeric attributes."""
    return featurizer.dim - N_LENGTH_FEATURES


def build_pairs(
    responses: pa.Table,
    preferences: pa.Table,
    criterion: str,
    feats: np.ndarray,
    ties: Literal["drop", "half"] = "drop",
    use_margin: bool = False,
) -> PairArrays:
    """Pairs of one criterion over the rows of ``feats`` (aligned with ``responses``).

    Args:
        responses: Normalised responses table (``response_id`` aligned with ``feats`` rows).
        preferences: Normalised preferences table with a ``criterion`` label column.
        criterion: Label column name, e.g. ``"better"``.
        feats: Feature matrix, one row per response.
        ties: ``"drop"`` or ``"half"`` (see module docstring).
        use_margin: Use the ``margin`` column (null → 0) as the TRL margin.

    Returns:
        :class:`PairArrays` with chosen/rejected oriented by the label.

    Raises:
        SchemaMismatchError: If a required column is missing.
    """
    cols = ["pair_id", "prompt_id", "response_a_id", "response_b_id", criterion]
    _require(preferences, cols + (["margin"] if use_margin else []), "preferences")
    row_of = {rid: i for i, rid in enumerate(responses.column("response_id").to_pylist())}
    a_ids = preferences.column("response_a_id").to_pylist()
    b_ids = preferences.column("response_b_id").to_pylist()
    labels = decode_labels(preferences.column(criterion).to_pylist(), a_ids, b_ids)
    margins = (
        np.nan_to_num(preferences.column("margin").cast(pa.float64()).to_numpy(zero_copy_only=False))
        if use_margin
        else np.zeros(len(labels))
    )
    a_rows = np.array([row_of.get(a, -1) for a in a_ids], np.int64)
    b_rows = np.array([row_of.get(b, -1) for b in b_ids], np.int64)
    keep = (labels != -128) & (a_rows >= 0) & (b_rows >= 0)
    n_ties = int(np.sum(labels == 0))
    if ties == "drop":
        keep &= labels != 0
    b_wins = labels == -1
    chosen = np.where(b_wins, b_rows, a_rows)[keep]
    rejected = np.where(b_wins, a_rows, b_rows)[keep]
    tie = (labels == 0)[keep]
    data = PairData(
        feats=feats,
        chosen=chosen.astype(np.int32),
        rejected=rejected.astype(np.int32),
        margin=np.where(tie, 0.0, np.abs(margins[keep])).astype(np.float32),
        target=np.where(tie, 0.5, 1.0).astype(np.float32),
    )
    return PairArrays(
        data=data,
        prompt_ids=np.asarray(preferences.column("prompt_id").to_pylist(), dtype=object)[keep],
        pair_ids=np.asarray(preferences.column("pair_id").to_pylist(), dtype=object)[keep],
        n_skipped=int(len(labels) - keep.sum()),
        n_ties=n_ties,
    )
