"""A run's labelled pairs aligned with its scores and responses, ready for agreement metrics.

Reads the run's ``preferences`` (the dataset's own labels), ``scores`` (the contract's reward,
utilities and clause flags) and ``responses`` (texts, input columns, grouping columns) from the
lake and joins them on response ids in Arrow (hash lookups, no Python loop over rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import DataError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.schemas import preference_label_columns
from rlhf_core.lake.store import Lake

GROUP_COLUMNS = ("source", "subset", "category")
"""Columns a breakdown is computed over when the data carries them (RewardBench-style subsets)."""

MAX_GROUPS = 50
"""A grouping column with more distinct values than this is not a subset label; it is skipped."""

__all__ = ["GROUP_COLUMNS", "RunPairs", "load_run_pairs"]


@dataclass(frozen=True)
class RunPairs:
    """Every labelled pair of a run whose two responses were scored, as aligned arrays.

    Attributes:
        run_id: The run.
        criteria: Label columns of ``preferences`` (e.g. ``better``, ``safer``).
        pairs: The pairs (``pair_id``, ``prompt_id``, ``response_a_id``, ``response_b_id`` and
            the label columns), ``N`` rows.
        row_a: Row of each pair's response ``a`` in ``scores`` / ``responses``, int ``[N]``.
        row_b: Row of response ``b``, int ``[N]``.
        prompt_group: Dense prompt index of each pair, int ``[N]``.
        scores: The run's ``scores`` rows, aligned with ``responses``.
        responses: The run's ``responses`` rows (text, inputs, grouping columns).
        unscored: Labelled pairs left out because a response has no score (quarantined).
    """

    run_id: str
    criteria: tuple[str, ...]
    pairs: pa.Table
    row_a: np.ndarray
    row_b: np.ndarray
    prompt_group: np.ndarray
    scores: pa.Table
    responses: pa.Table
    unscored: int

    def column(self, name: str) -> np.ndarray:
        """A numeric ``scores`` or ``responses`` column as float64 per response (NaN for null)."""
        source = self.scores if name in self.scores.schema.names else self.responses
        array = source.column(name)
        if pa.types.is_boolean(array.type):
            array = pc.cast(array, pa.int8())
        return np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), np.float64)

    def label(self, criterion: str) -> np.ndarray:
        """Labels of ``criterion`` per pair: int8 1 / -1 / 0, and -128 where missing."""
        return np.asarray(pc.fill_null(self.pairs.column(criterion), -128).to_numpy(), np.int64)

    def groups(self) -> dict[str, np.ndarray]:
        """Grouping columns of the pairs (taken from response ``a``) with 2..MAX_GROUPS values."""
        out = {}
        for name in GROUP_COLUMNS:
            if name not in self.responses.schema.names:
                continue
            values = np.asarray(self.responses.column(name).to_pylist(), dtype=object)[self.row_a]
            distinct = {v for v in values.tolist() if v is not None}
            if 2 <= len(distinct) <= MAX_GROUPS:
                out[name] = values
        return out


def _require_run(lake: Lake, table: Table, run_id: str, fix: str) -> None:
    if not lake.part_paths(table, run_id):
        raise DataError(f"run {run_id} has no {table.value} in {lake.root}: {fix}")


def load_run_pairs(lake: Lake, run_id: str, program: ContractProgram,
                   criteria: Sequence[str] | None = None) -> RunPairs:
    """Load and align a run's labelled pairs with its scores and responses.

    Args:
        lake: The lake.
        run_id: A run that ingested a dataset with preference labels and scored it.
        program: The contract the run scored with (its inputs must be response columns).
        criteria: Criteria to evaluate (default: every label column of ``preferences``).

    Raises:
        DataError: One line naming the run and what is missing: no preference labels, no
            scores, an unknown criterion, or contract inputs the run's responses lack.
    """
    _require_run(lake, Table.PREFERENCES, run_id,
                 "ingest a dataset with preference labels (pairs, or ratings paired within "
                 "prompts) into this run id, or evaluate another run")
    _require_run(lake, Table.SCORES, run_id, "score the run first (rlhf-wizard run ...)")
    preferences = lake.read_run(Table.PREFERENCES, run_id)
    available = preference_label_columns(preferences.schema)
    wanted = tuple(criteria) if criteria else tuple(available)
    missing = [c for c in wanted if c not in available]
    if missing or not wanted:
        raise DataError(f"run {run_id} has no preference criterion {', '.join(missing) or '(none)'}; "
                        f"its criteria: {', '.join(available) or 'none'}")
    responses = lake.read_run(Table.RESPONSES, run_id)
    lacking = [d.name for d in program.inputs if d.name not in responses.schema.names]
    if lacking:
        raise DataError(f"run {run_id} lacks the contract's inputs {', '.join(lacking)} in its "
                        "responses; evaluate it with the contract it was scored with")
    scores = lake.read_run(Table.SCORES, run_id)
    # Align scores with responses by response id (scores hold every accepted response once).
    at = pc.index_in(responses.column("response_id"), value_set=scores.column("response_id"))
    keep = pc.is_valid(at)
    responses = responses.filter(keep)
    scores = scores.take(pc.drop_null(at))
    ids = responses.column("response_id")
    row_a = pc.index_in(preferences.column("response_a_id"), value_set=ids)
    row_b = pc.index_in(preferences.column("response_b_id"), value_set=ids)
    scored = pc.and_(pc.is_valid(row_a), pc.is_valid(row_b))
    pairs = preferences.filter(scored).select(
        ["pair_id", "prompt_id", "response_a_id", "response_b_id", *wanted])
    row_a = np.asarray(pc.drop_null(row_a.filter(scored)).to_numpy(), np.int64)
    row_b = np.asarray(pc.drop_null(row_b.filter(scored)).to_numpy(), np.int64)
    prompt_group = np.asarray(
        pc.dictionary_encode(pairs.column("prompt_id")).combine_chunks().indices.to_numpy(),
        np.int64) if pairs.num_rows else np.zeros(0, np.int64)
    return RunPairs(run_id, wanted, pairs, row_a, row_b, prompt_group, scores, responses,
                    preferences.num_rows - pairs.num_rows)
