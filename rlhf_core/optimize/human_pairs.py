"""``pairing: human``: the dataset's own labelled pairs, filtered by the contract.

Each row of the run's ``preferences`` names two responses and a label per criterion (``1``:
response a wins, ``-1``: b wins, ``0``: tie, null: not labelled for it). A labelled pair becomes a
pair row unless one of these rules drops it (each is counted):

* ``unscored``: a response has no score (it was quarantined);
* ``unlabelled``: no label for the criterion;
* ``clause_excluded``: its prompt fails a FORALL / EXISTS clause of the contract;
* ``label_ties`` (``ties: drop``): the annotators saw no difference;
* ``vetoed_chosen``: the labelled winner is vetoed by the contract (a tie kept under ``keep``
  puts its allowed side first; both vetoed is dropped);
* ``disagreements_dropped`` (``on_disagreement: drop``): the contract's reward ranks the loser
  strictly higher; under ``flag`` the pair stays with ``disagrees`` set
  (``disagreements_flagged``).

The margin of a pair is the contract's (chosen − rejected reward; negative on a disagreement),
0 for a kept tie; under ``ties: kto`` a label tie becomes an ``unpaired`` row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import DataError
from rlhf_core.lake.schemas import preference_label_columns
from rlhf_core.optimize.pair_policy import PairPolicy

__all__ = ["CandidatePairs", "human_pairs", "label_criterion"]


class CandidatePairs(NamedTuple):
    """Pairs as rows of the ``scores`` table, before texts are attached.

    Attributes:
        chosen: int64 ``[N]`` scores row of the chosen response.
        rejected: int64 ``[N]`` scores row of the rejected response.
        margin: float32 ``[N]`` reward margin.
        tie: bool ``[N]`` a tie (equal rewards, or a label tie).
        disagrees: bool ``[N]`` the reward ranks the labelled loser higher (``human`` only).
        label_margin: float64 ``[N]`` the label's stated strength (NaN: none or not labelled).
    """

    chosen: np.ndarray
    rejected: np.ndarray
    margin: np.ndarray
    tie: np.ndarray
    disagrees: np.ndarray
    label_margin: np.ndarray


def label_criterion(preferences: pa.Table, wanted: str | None, run_id: str) -> str:
    """The label column ``pairing: human`` reads.

    Raises:
        DataError: The criterion is not a label column, or none was named and the data has
            several label columns and no ``better``.
    """
    available = preference_label_columns(preferences.schema)
    if wanted is not None and wanted in available:
        return wanted
    if wanted is None and len(available) == 1:
        return available[0]
    if wanted is None and "better" in available:
        return "better"
    raise DataError(f"run {run_id}: pairing: human has no label column "
                    f"{wanted or '(none named)'}; its labels: {', '.join(available) or 'none'}; set "
                    "selection.criterion to one of them")


def cap_per_prompt(prompt: np.ndarray, margin: np.ndarray, cap: int | None) -> np.ndarray:
    """Keep-mask of at most ``cap`` rows per prompt, largest margins first (input order breaks
    equal margins)."""
    n = len(prompt)
    if cap is None or n == 0:
        return np.ones(n, bool)
    order = np.lexsort((np.arange(n), -np.asarray(margin, np.float64), prompt))
    group_start = np.r_[True, prompt[order][1:] != prompt[order][:-1]]
    starts = np.maximum.accumulate(np.where(group_start, np.arange(n), 0))
    keep = np.zeros(n, bool)
    keep[order] = (np.arange(n) - starts) < cap
    return keep


def human_pairs(response_ids: pa.ChunkedArray, prompt_codes: np.ndarray, reward: np.ndarray,
                veto: np.ndarray, prompt_ok: np.ndarray, preferences: pa.Table, policy: PairPolicy,
                run_id: str) -> tuple[CandidatePairs, dict[str, int]]:
    """Labelled pairs of ``preferences`` as scores rows, filtered by the contract.

    Args:
        response_ids: ``response_id`` per scores row.
        prompt_codes: int ``[R]`` prompt index per scores row (any dense code).
        reward: ``[R]`` the contract's reward per scores row.
        veto: bool ``[R]`` the row is vetoed.
        prompt_ok: bool ``[R]`` its prompt passes the FORALL / EXISTS clauses.
        preferences: The run's ``preferences``.
        policy: The pair policy (``criterion``, ``ties``, ``on_disagreement``, cap).
        run_id: Named in errors.

    Returns:
        The pairs and the counts of the module docstring (plus ``labelled`` and ``capped``).

    Raises:
        DataError: See :func:`label_criterion`.
    """
    criterion = label_criterion(preferences, policy.criterion, run_id)
    at_a = pc.index_in(preferences.column("response_a_id"), value_set=response_ids)
    at_b = pc.index_in(preferences.column("response_b_id"), value_set=response_ids)
    scored = pc.and_(pc.is_valid(at_a), pc.is_valid(at_b)).to_numpy(zero_copy_only=False)
    label = pc.fill_null(preferences.column(criterion), -128).to_numpy().astype(np.int64)
    strength = pc.cast(preferences.column("margin"), pa.float64()).to_numpy(zero_copy_only=False)
    a = pc.fill_null(at_a, 0).to_numpy().astype(np.int64)
    b = pc.fill_null(at_b, 0).to_numpy().astype(np.int64)
    reward = np.asarray(reward, np.float64)
    veto = np.asarray(veto, bool)
    counts = {"labelled": int(len(label)), "unscored": int((~scored).sum())}
    live = scored & (label != -128)
    counts["unlabelled"] = int((scored & (label == -128)).sum())
    clause_ok = prompt_ok[a] & prompt_ok[b]
    counts["clause_excluded"] = int((live & ~clause_ok).sum())
    live &= clause_ok
    tie = label == 0
    if policy.ties == "drop":
        counts["label_ties"] = int((live & tie).sum())
        live &= ~tie
    # b wins, or a tie whose a side is vetoed (its allowed side goes first): b is chosen.
    b_first = (label == -1) | (tie & veto[a] & ~veto[b])
    chosen, rejected = np.where(b_first, b, a), np.where(b_first, a, b)
    vetoed = veto[chosen] & ~(tie & (policy.ties == "kto"))
    counts["vetoed_chosen"] = int((live & vetoed).sum())
    live &= ~vetoed
    disagrees = ~tie & (reward[chosen] < reward[rejected])
    key = "disagreements_dropped" if policy.on_disagreement == "drop" else "disagreements_flagged"
    counts[key] = int((live & disagrees).sum())
    if policy.on_disagreement == "drop":
        live &= ~disagrees
    margin = np.where(tie, 0.0, reward[chosen] - reward[rejected]).astype(np.float32)
    rows = np.flatnonzero(live)
    capped = cap_per_prompt(np.asarray(prompt_codes)[chosen[rows]], margin[rows],
                            policy.max_pairs_per_prompt)
    counts["capped"] = int((~capped).sum())
    rows = rows[capped]
    return CandidatePairs(chosen[rows], rejected[rows], margin[rows], tie[rows], disagrees[rows],
                          strength[rows]), counts
