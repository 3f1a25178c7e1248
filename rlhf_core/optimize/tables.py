"""Arrow entry points: ``scores`` table in, padded arrays and the KL policy's ``selections`` out
(pairs: :mod:`rlhf_core.optimize.pair_set`).

The ``scores`` table (one row per response) carries ``prompt_id``, ``response_id``, ``reward``,
``u_<stakeholder>`` utility columns and a boolean ``veto`` (the schema of
``rlhf_core.scoring.schema``). A prompt fails its FORALL / EXISTS clauses when any of its rows has
True in one of the ``prompt_clauses`` columns (the ``v_<label>`` violation flags of the quantified
clauses) or False in an optional ``prompt_ok`` column. Rows are pivoted into padded ``[prompts, candidates]`` arrays
(prompts sorted by id, candidates in input order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import SchemaMismatchError
from rlhf_core.optimize.kl_policy import KLPolicyConfig, check_policy, make_kl_policy


class ScoreTensor(NamedTuple):
    """Padded arrays built from a scores table (``P`` prompts, ``C`` max candidates)."""

    utils: np.ndarray  # float32 [P, C, S]
    reward: np.ndarray  # float32 [P, C]
    valid: np.ndarray  # bool [P, C]
    vetoed: np.ndarray  # bool [P, C]
    prompt_ok: np.ndarray  # bool [P]
    prompt_ids: np.ndarray  # object [P]
    response_ids: np.ndarray  # object [P, C] (None in padding)
    row: np.ndarray  # int64 [P, C] input row (-1 in padding)


def _column(table: pa.Table, name: str, dtype: pa.DataType) -> np.ndarray:
    return table.column(name).cast(dtype).to_numpy(zero_copy_only=False)


def scores_to_tensor(
    scores: pa.Table,
    stakeholders: Sequence[str],
    reward_column: str = "reward",
    prompt_clauses: Sequence[str] = (),
    prompt_ok_column: str = "prompt_ok",
) -> ScoreTensor:
    """Pivot a scores table into padded arrays.

    Raises:
        SchemaMismatchError: If a required column is missing.
    """
    needed = ["prompt_id", "response_id", reward_column, *(f"u_{s}" for s in stakeholders),
              *prompt_clauses]
    missing = [c for c in needed if c not in scores.column_names]
    if missing:
        raise SchemaMismatchError(
            f"scores table lacks column(s) {missing}; score the responses under the contract first "
            f"(columns present: {scores.column_names})"
        )
    order, uniq, start, counts = _group_rows(scores.column("prompt_id"))
    n_p, n_c = len(uniq), int(counts.max()) if len(counts) else 0
    prompt_of = np.repeat(np.arange(n_p), counts)
    slot = np.arange(len(order)) - np.repeat(start, counts)
    row = np.full((n_p, n_c), -1, np.int64)
    row[prompt_of, slot] = order
    valid = row >= 0
    take = np.where(valid, row, 0)

    def pad(values: np.ndarray, fill: object) -> np.ndarray:
        return np.where(valid, values[take], fill)

    utils = np.stack([pad(_column(scores, f"u_{s}", pa.float32()), 0.0) for s in stakeholders]
                     or [np.zeros((n_p, n_c), np.float32)], -1)[..., : len(stakeholders)]
    n = scores.num_rows
    veto = _column(scores, "veto", pa.bool_()) if "veto" in scores.column_names else np.zeros(n, bool)
    ok_rows = (_column(scores, prompt_ok_column, pa.bool_()) if prompt_ok_column in scores.column_names
               else np.ones(n, bool))
    for clause in prompt_clauses:
        ok_rows = ok_rows & ~_column(scores, clause, pa.bool_())
    rids = _objects(scores.column("response_id"))
    return ScoreTensor(
        utils=utils.astype(np.float32),
        reward=pad(_column(scores, reward_column, pa.float32()), 0.0).astype(np.float32),
        valid=valid,
        vetoed=pad(veto, False).astype(bool),
        prompt_ok=np.all(np.where(valid, ok_rows[take], True), axis=1),
        prompt_ids=uniq,
        response_ids=np.where(valid, rids[take], None),
        row=row,
    )


def _is_text(column: pa.ChunkedArray | pa.Array) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """The column as an object array of Python values (``str`` for text, None for nulls)."""
    if _is_text(column):
        return column.to_numpy(zero_copy_only=False)
    return np.asarray(column.to_pylist(), dtype=object)


def _group_rows(ids: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by id: ``(order, unique ids, first position in order, rows per id)``.

    ``order`` sorts the rows by the ids' text (stable, so rows of one id keep their input
    order); unique ids are Python objects (``str``). Text ids are grouped by Arrow without a
    Python object per row (UTF-8 byte order is code point order, NumPy's string order); any other
    id type, or ids with nulls, by NumPy on their string forms.
    """
    if ids.null_count or not _is_text(ids):
        pids = np.asarray(ids.to_pylist(), dtype=object)
        order = np.argsort(pids.astype(str), kind="stable")
        uniq, start, counts = np.unique(pids[order].astype(str), return_index=True, return_counts=True)
        return order, uniq.astype(object), start, counts
    order = pc.sort_indices(ids)
    ordered = ids.take(order)
    if len(ordered) == 0:
        empty = np.zeros(0, np.int64)
        return empty, np.zeros(0, object), empty, empty
    change = pc.not_equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False)
    start = np.flatnonzero(np.concatenate([[True], change]))
    counts = np.diff(np.append(start, len(ordered)))
    return (order.to_numpy(zero_copy_only=False), ordered.take(pa.array(start)).to_numpy(zero_copy_only=False),
            start, counts)


def _positions(ids: pa.ChunkedArray, wanted: list | pa.Array, n_chosen: int) -> tuple[pa.Array, pa.Array]:
    """Rows of ``ids`` holding the ``wanted`` ids (chosen ones first, then rejected ones); the
    last row wins when an id repeats, as in a dict built from the table.

    Raises:
        SchemaMismatchError: If a wanted id is not among ``ids``.
    """
    n = len(ids)
    if _is_text(ids):
        backwards = ids.take(pa.array(np.arange(n - 1, -1, -1, dtype=np.int64)))
        asked = wanted.cast(ids.type) if isinstance(wanted, pa.Array) else pa.array(wanted, ids.type)
        found = pc.index_in(asked, value_set=backwards).cast(pa.int64())
        found = pc.subtract(pa.scalar(n - 1, pa.int64()), found)
    else:
        wanted = wanted.to_pylist() if isinstance(wanted, pa.Array) else wanted
        lookup = {v: i for i, v in enumerate(ids.to_pylist())}
        found = pa.array([lookup.get(i) for i in wanted], pa.int64())
    missing = found.is_null().to_numpy(zero_copy_only=False)
    if missing.any():
        unknown = [wanted[i] for i in np.flatnonzero(missing)]
        unknown = [u.as_py() if isinstance(u, pa.Scalar) else u for u in unknown]
        raise SchemaMismatchError(
            f"{len(unknown)} scored response id(s) (first {unknown[0]!r}) are not in the responses table; "
            "score and select from the same ingest run"
        )
    return found.slice(0, n_chosen), found.slice(n_chosen)


def _take_ids(column: pa.ChunkedArray, rows: pa.Array, values: np.ndarray) -> pa.ChunkedArray | list:
    """``column`` at ``rows`` as text, without a Python object per row; ``values`` (the same ids as
    Python objects) as a list when the ids are not text."""
    return column.take(rows).cast(pa.string()) if _is_text(column) and not column.null_count else values.tolist()


def optimize_policy(
    scores: pa.Table,
    cost_column: str,
    budget: float | None,
    config: KLPolicyConfig,
    reward_column: str = "reward",
    ref_column: str | None = None,
    prompt_clauses: Sequence[str] = (),
) -> tuple[pa.Table, dict[str, float | bool | int]]:
    """Constrained KL policy over each prompt's allowed candidates (vetoed ones get no mass).

    ``budget=None`` takes the midpoint between the smallest achievable expected cost (the
    cheapest allowed candidate of every prompt) and the reference policy's, so the default is
    always feasible and binds whenever there is a cheaper choice. When no prompt has two allowed
    candidates there is nothing to choose: the policy is the lone candidate, nothing is solved,
    and the summary says so (``status``).

    Returns:
        ``(selections, summary)``: per response ``prompt_id``, ``response_id``, ``policy_prob``,
        ``best_under_contract`` (argmax reward) and ``best_under_policy`` (argmax probability);
        summary with ``status`` (``solved`` | ``nothing to choose``), λ, slack, KL, expected
        reward / cost, the achievable and reference costs, steps.

    Raises:
        OptimizationDivergedError: If a given budget is infeasible or dual ascent did not converge.
    """
    t = scores_to_tensor(scores, [], reward_column, prompt_clauses)
    cost = np.where(t.valid, _column(scores, cost_column, pa.float32())[np.maximum(t.row, 0)], 0.0)
    ref = (np.where(t.valid, _column(scores, ref_column, pa.float32())[np.maximum(t.row, 0)], 0.0)
           if ref_column else np.ones_like(t.reward))
    allowed = t.valid & ~t.vetoed & t.prompt_ok[:, None]
    live = allowed.any(axis=1)
    ref_w = np.where(allowed, ref, 0.0)
    ref_w = ref_w / np.maximum(ref_w.sum(axis=1, keepdims=True), 1e-30)
    min_cost = float(np.mean(np.where(allowed, cost, np.inf).min(axis=1)[live])) if live.any() else 0.0
    ref_cost = float(np.mean((ref_w * cost).sum(axis=1)[live])) if live.any() else 0.0
    if budget is None:
        budget = min_cost + 0.5 * (ref_cost - min_cost)
    policy = np.zeros_like(t.reward)
    if not live.any() or (allowed.sum(axis=1)[live] <= 1).all():
        policy[live] = allowed[live].astype(np.float32)
        res = None
    else:
        solve = make_kl_policy(config)
        res = solve(jnp.asarray(t.reward[live]), jnp.asarray(cost[live], jnp.float32),
                    jnp.asarray(ref[live], jnp.float32), jnp.asarray(allowed[live]),
                    jnp.float32(budget))
        check_policy(res, budget)
        policy[live] = np.asarray(res.policy)
    best_c = np.argmax(np.where(allowed, t.reward, -np.inf), axis=1)
    best_p = np.argmax(policy, axis=1)
    pi, ci = np.nonzero(t.valid)
    rows = pa.array(t.row[pi, ci])
    selections = pa.table({
        "prompt_id": _take_ids(scores.column("prompt_id"), rows, t.prompt_ids[pi]),
        "response_id": _take_ids(scores.column("response_id"), rows, t.response_ids[pi, ci]),
        "policy_prob": policy[pi, ci].astype(np.float32),
        "best_under_contract": live[pi] & (best_c[pi] == ci),
        "best_under_policy": live[pi] & (best_p[pi] == ci),
    })
    common = {"budget": float(budget), "min_cost": min_cost, "reference_cost": ref_cost,
              "prompts": int(live.sum())}
    if res is None:
        chosen = np.where(allowed, t.reward, 0.0).sum(axis=1)[live]
        return selections, {**common, "status": "nothing to choose", "lambda": 0.0,
                            "slack": float(budget) - min_cost, "kl": 0.0,
                            "expected_reward": float(chosen.mean()) if live.any() else 0.0,
                            "expected_cost": min_cost, "active": False, "steps": 0}
    summary = {**common, "status": "solved", "lambda": float(res.lam), "slack": float(res.slack),
               "kl": float(res.kl), "expected_reward": float(res.expected_reward),
               "expected_cost": float(res.expected_cost), "active": bool(res.active),
               "steps": int(res.steps)}
    return selections, summary
