"""A run's pair set: the contract's pair policy applied to its scores (and labels), as a table.

:func:`build_pairs` is the one write path of the ``pairs`` table's rows: the strategies of
:func:`rlhf_core.optimize.pairs.select_pairs` (or the labelled pairs of
:mod:`rlhf_core.optimize.human_pairs`), then, in order: the texts attached from ``responses``;
pairs whose two texts are equal dropped (``identical_text``); ``kind`` and the KTO labels; the
length-balanced subsample when asked; the weights; and the length figures of the pairs
(:func:`rlhf_core.optimize.export_lengths.pair_length_bias` over the rows exported as pairs),
which the length gate checks against ``max_chosen_longer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import DataError
from rlhf_core.lake.catalog import PAIRS_SCHEMA
from rlhf_core.optimize.export_lengths import PairLengthBias, pair_length_bias
from rlhf_core.optimize.human_pairs import CandidatePairs, human_pairs
from rlhf_core.optimize.pair_policy import PairPolicy
from rlhf_core.optimize.pair_rows import balance_lengths, pair_weights, side_labels
from rlhf_core.optimize.pairs import Strategy, select_pairs
from rlhf_core.optimize.tables import ScoreTensor, _column, _positions, scores_to_tensor

__all__ = ["PairSet", "build_pairs", "select_pairs_table"]


class PairSet(NamedTuple):
    """What :func:`build_pairs` returns.

    Attributes:
        table: :data:`PAIRS_SCHEMA` rows (+ ``contract_hash`` / ``run_id`` when given).
        counts: Selection counts (``prompts``, ``pairs``, ``ties``, ``unpaired``,
            ``identical_text``, ``length_balanced_out`` and the strategy's own reasons).
        lengths: Length figures of the rows exported as pairs (``pair`` and ``tie``).
    """

    table: pa.Table
    counts: dict[str, int]
    lengths: PairLengthBias


def _strategy_pairs(t: ScoreTensor, policy: PairPolicy) -> tuple[CandidatePairs, np.ndarray, dict[str, int]]:
    """JAX strategies: the pairs as scores rows, their prompt ids, and prompt counts."""
    sel = jax.device_get(select_pairs(
        jnp.asarray(t.reward), jnp.asarray(t.valid), jnp.asarray(t.vetoed), jnp.asarray(t.prompt_ok),
        policy.pairing, policy.min_margin, jax.random.key(policy.seed), keep_ties=policy.ties != "drop",
        max_per_prompt=policy.max_pairs_per_prompt, threshold=policy.reward_threshold))
    keep = np.asarray(sel.keep)
    p, c, r = (np.asarray(a)[keep] for a in (sel.prompt, sel.chosen, sel.rejected))
    n = len(p)
    pairs = CandidatePairs(t.row[p, c], t.row[p, r], np.asarray(sel.margin)[keep], np.asarray(sel.tie)[keep],
                           np.zeros(n, bool), np.full(n, np.nan))
    counts = {"excluded_clause": int(sel.n_excluded_clause), "no_allowed": int(sel.n_no_allowed),
              "no_pair": int(sel.n_no_pair)}
    return pairs, t.prompt_ids[p], counts


def _rows_prompt_ok(t: ScoreTensor, n_rows: int) -> np.ndarray:
    ok = np.ones(n_rows, bool)
    prompt_of, _ = np.nonzero(t.valid)
    ok[t.row[t.valid]] = t.prompt_ok[prompt_of]
    return ok


def build_pairs(
    scores: pa.Table,
    responses: pa.Table,
    policy: PairPolicy,
    *,
    preferences: pa.Table | None = None,
    reward_column: str = "reward",
    prompt_clauses: Sequence[str] = (),
    contract_hash: str | None = None,
    run_id: str | None = None,
) -> PairSet:
    """The pair set of ``policy`` (see module docstring).

    Args:
        scores: Scores table (``prompt_id``, ``response_id``, the reward, ``veto``, clause flags).
        responses: Responses table with ``response_id``, ``prompt``, ``response`` text.
        policy: The pair policy.
        preferences: The run's labelled pairs (needed by ``pairing: human``).
        reward_column: Score column ranking the candidates.
        prompt_clauses: ``v_<label>`` violation columns of FORALL / EXISTS clauses.
        contract_hash: Appended as a ``contract_hash`` column when given.
        run_id: Appended as a ``run_id`` column when given (and named in errors).

    Raises:
        SchemaMismatchError: A column is missing or a scored response has no text.
        DataError: ``pairing: human`` without labelled pairs or with an unknown criterion.
    """
    t = scores_to_tensor(scores, [], reward_column, prompt_clauses)
    reward = _column(scores, reward_column, pa.float32())
    veto = t.vetoed[np.nonzero(t.valid)]
    veto_rows = np.zeros(scores.num_rows, bool)
    veto_rows[t.row[t.valid]] = veto
    if policy.pairing == "human":
        if preferences is None or preferences.num_rows == 0:
            raise DataError(f"run {run_id or '?'} has no labelled pairs for pairing: human; ingest a "
                            "dataset with preference labels or choose another pairing")
        codes = pc.dictionary_encode(scores.column("prompt_id")).combine_chunks().indices.to_numpy()
        pairs, counts = human_pairs(scores.column("response_id"), codes, reward, veto_rows,
                                    _rows_prompt_ok(t, scores.num_rows), preferences, policy, run_id or "?")
        prompt_ids = scores.column("prompt_id").take(pa.array(pairs.chosen, pa.int64())).cast(
            pa.string()).combine_chunks()
    else:
        pairs, prompt_ids, counts = _strategy_pairs(t, policy)
    ids = scores.column("response_id")
    chosen_ids, rejected_ids = (ids.take(pa.array(rows, pa.int64())).cast(pa.string()).combine_chunks()
                                for rows in (pairs.chosen, pairs.rejected))
    n = len(chosen_ids)
    chosen_at, rejected_at = _positions(responses.column("response_id"),
                                        pa.concat_arrays([chosen_ids, rejected_ids]), n)
    chosen_text = responses.column("response").take(chosen_at).cast(pa.string())
    rejected_text = responses.column("response").take(rejected_at).cast(pa.string())
    # Duplicate texts under different ids (HelpSteer has some) make a useless DPO pair: drop them.
    differ = pc.invert(pc.equal(chosen_text, rejected_text)).to_numpy(zero_copy_only=False)
    kept = np.flatnonzero(differ)
    tie = pairs.tie[kept]
    kind = np.where(tie, "tie" if policy.ties == "keep" else "unpaired", "pair").astype(object)
    chosen_len = pc.utf8_length(chosen_text).to_numpy(zero_copy_only=False)[kept]
    rejected_len = pc.utf8_length(rejected_text).to_numpy(zero_copy_only=False)[kept]
    paired = kind != "unpaired"
    balanced = (balance_lengths(chosen_len, rejected_len, paired, policy.seed) if policy.length_balance
                else np.ones(len(kept), bool))
    rows, kind, paired = kept[balanced], kind[balanced], paired[balanced]
    c_rows, r_rows = pairs.chosen[rows], pairs.rejected[rows]
    margin = pairs.margin[rows]
    take = pa.array(rows, pa.int64())
    table = pa.table({
        "prompt": responses.column("prompt").take(chosen_at.take(take)).cast(pa.string()),
        "chosen": chosen_text.take(take),
        "rejected": rejected_text.take(take),
        "prompt_id": (prompt_ids if isinstance(prompt_ids, pa.Array)
                      else pa.array(prompt_ids.tolist(), pa.string())).take(take),
        "chosen_id": chosen_ids.take(take),
        "rejected_id": rejected_ids.take(take),
        "chosen_reward": reward[c_rows],
        "rejected_reward": reward[r_rows],
        "margin": margin,
        "strategy": pa.repeat(policy.pairing, len(rows)),
        "weight": pair_weights(policy.weight, margin, pairs.label_margin[rows]),
        "kind": pa.array(kind.tolist(), pa.string()),
        "chosen_desirable": side_labels(kind, ~veto_rows[c_rows], reward[c_rows], policy.reward_threshold, True),
        "rejected_desirable": side_labels(kind, ~veto_rows[r_rows], reward[r_rows], policy.reward_threshold,
                                          False),
        "disagrees": pairs.disagrees[rows],
    }, schema=PAIRS_SCHEMA)
    for name, value in (("contract_hash", contract_hash), ("run_id", run_id)):
        if value is not None:
            table = table.append_column(name, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
    lengths = pair_length_bias(chosen_len[balanced][paired], rejected_len[balanced][paired])
    counts = {"prompts": len(t.prompt_ids), "pairs": int(paired.sum()), **counts,
              "ties": int((kind == "tie").sum()), "unpaired": int((kind == "unpaired").sum()),
              "identical_text": int(n - len(kept)), "length_balanced_out": int((~balanced).sum())}
    return PairSet(table, counts, lengths)


def select_pairs_table(
    scores: pa.Table,
    responses: pa.Table,
    strategy: Strategy,
    margin: float = 0.0,
    seed: int = 0,
    reward_column: str = "reward",
    prompt_clauses: Sequence[str] = (),
    contract_hash: str | None = None,
    run_id: str | None = None,
) -> tuple[pa.Table, dict[str, int]]:
    """DPO pairs of one strategy with no further policy: ``(pairs, counts)`` of :func:`build_pairs`.

    Args:
        scores: Scores table (see :func:`build_pairs`).
        responses: Responses table with ``response_id``, ``prompt``, ``response`` text.
        strategy: A strategy of :func:`rlhf_core.optimize.pairs.select_pairs`.
        margin: Minimum reward gap (strict).
        seed: Seed of ``best_vs_random``.
        reward_column: Score column ranking the candidates.
        prompt_clauses: ``v_<label>`` violation columns of FORALL / EXISTS clauses.
        contract_hash: Appended as a ``contract_hash`` column when given.
        run_id: Appended as a ``run_id`` column when given.
    """
    result = build_pairs(scores, responses, PairPolicy(pairing=strategy, min_margin=margin, seed=seed),
                         reward_column=reward_column, prompt_clauses=prompt_clauses,
                         contract_hash=contract_hash, run_id=run_id)
    return result.table, result.counts
