"""Synthetic preference labels from hidden "true" annotator weights (the demo's ground truth).

The demo's annotators are modelled as sharing the contract's utilities, clauses and rule but
weighing the stakeholders their own way: their reward ``R*`` is the contract's reward with
:data:`ANNOTATOR_WEIGHTS` in place of its weights. Every pair of candidates of a prompt is
labelled by a Bradley–Terry draw, ``P(a ≻ b) = σ(β (R*(a) − R*(b)))`` with ``β`` =
:data:`ANNOTATOR_SCALE`; a pair whose rewards are equal (e.g. both vetoed) is a tie (label 0).
Evaluation should therefore find the contract agreeing with the labels well but not perfectly,
and calibration should recover :data:`ANNOTATOR_WEIGHTS`.

Labels are drawn from ``numpy.random.default_rng([seed, 7])``: the same seed and responses give
the same labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pyarrow as pa

from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import DataError
from rlhf_core.lake.schemas import content_id, preferences_schema
from rlhf_core.scoring import score_table

ANNOTATOR_WEIGHTS = {"users": 0.6, "safety_board": 0.25, "operator": 0.15}
"""The demo annotators' hidden weights (the demo contract says 0.5 / 0.3 / 0.2)."""
ANNOTATOR_SCALE = 10.0
"""β of the demo annotators: how sharply a reward difference decides a label."""
MAX_PAIRS_PER_PROMPT = 6
"""Prompts with more candidates are paired with their next neighbours only (i, i+1), (i, i+2)."""

__all__ = ["ANNOTATOR_SCALE", "ANNOTATOR_WEIGHTS", "annotator_preferences", "within_prompt_pairs"]


def within_prompt_pairs(prompt_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(a, b)`` of candidate pairs, never across prompts.

    Args:
        prompt_ids: Prompt of each row, rows of one prompt contiguous, ``[n]``.

    Returns:
        Two int64 arrays: every pair ``a < b`` of a prompt with up to 4 candidates, else the
        pairs ``(i, i+1)`` and ``(i, i+2)`` (at most :data:`MAX_PAIRS_PER_PROMPT` per 4 rows).
    """
    n = len(prompt_ids)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(prompt_ids[1:] != prompt_ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    sizes = np.diff(np.concatenate([starts, [n]]))
    firsts, seconds = [], []
    for size in np.unique(sizes):
        at = starts[sizes == size]
        if size <= 4:
            i, j = np.triu_indices(int(size), 1)
        else:
            i = np.concatenate([np.arange(size - 1), np.arange(size - 2)])
            j = np.concatenate([np.arange(1, size), np.arange(2, size)])
        firsts.append((at[:, None] + i[None, :]).ravel())
        seconds.append((at[:, None] + j[None, :]).ravel())
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    order = np.argsort(a, kind="stable")
    return a[order].astype(np.int64), b[order].astype(np.int64)


def annotator_preferences(responses: pa.Table, program: ContractProgram,
                          weights: Mapping[str, float] | None = None, *, seed: int = 0,
                          scale: float = ANNOTATOR_SCALE, criterion: str = "better") -> pa.Table:
    """A ``preferences`` table labelled by annotators with ``weights`` (see the module docstring).

    Args:
        responses: Normalised responses, rows of a prompt contiguous (the generator's order).
        program: The contract whose utilities, clauses and rule the annotators share.
        weights: Their weight per stakeholder (default :data:`ANNOTATOR_WEIGHTS`).
        seed: Label seed.
        scale: ``β`` (> 0).
        criterion: Name of the label column.

    Raises:
        DataError: The weights do not name exactly the contract's stakeholders.
    """
    weights = dict(ANNOTATOR_WEIGHTS if weights is None else weights)
    names = [s.name for s in program.stakeholders]
    if set(weights) != set(names) or sum(weights.values()) <= 0:
        raise DataError(f"annotator weights must name the stakeholders {', '.join(names)} with a "
                        f"positive total; got {weights}")
    total = sum(weights.values())
    truth = replace(program, stakeholders=tuple(replace(s, weight=weights[s.name] / total)
                                                for s in program.stakeholders))
    reward = score_table(truth, responses, id_columns=["response_id"]).column("reward")
    reward = np.asarray(reward.to_numpy(), np.float64)
    prompt_ids = np.asarray(responses.column("prompt_id").to_pylist(), dtype=object)
    a, b = within_prompt_pairs(prompt_ids)
    diff = reward[a] - reward[b]
    p_a = 0.5 * (1.0 + np.tanh(0.5 * scale * diff))  # the logistic, without exp overflow
    draw = np.random.default_rng([seed, 7]).random(len(a))
    label = np.where(diff == 0.0, 0, np.where(draw < p_a, 1, -1)).astype(np.int8)
    ids = responses.column("response_id").to_pylist()
    source = responses.column("source").to_pylist()
    runs = responses.column("ingest_run").to_pylist()
    schema = preferences_schema([criterion])
    return pa.table({
        "pair_id": [content_id(ids[i], ids[j]) for i, j in zip(a, b, strict=True)],
        "prompt_id": prompt_ids[a].tolist(),
        "response_a_id": [ids[i] for i in a],
        "response_b_id": [ids[j] for j in b],
        "margin": pa.nulls(len(a), pa.float32()),
        "source": [source[i] for i in a],
        "source_line": pa.nulls(len(a), pa.int64()),
        "ingest_run": [runs[i] for i in a],
        criterion: label,
    }, schema=schema)
