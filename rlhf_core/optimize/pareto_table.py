"""``compute_pareto``: the stakeholder trade-off table and its summary from a scores table.

Weights: a regular simplex lattice with at least ``min_weights`` vectors (vertices included, so
each stakeholder's own optimum is on the grid), plus the contract's weights when given. The
hypervolume reference point is the componentwise minimum of the random-choice (no-deal) utilities,
the evaluated points and, when given, the utilities' lower bounds, nudged down by 1e-6 of the
range so every front point counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa

from rlhf_core.errors import DataError
from rlhf_core.optimize.bargaining import nash_point, regret
from rlhf_core.optimize.front import hypervolume, knee_point, non_dominated
from rlhf_core.optimize.pareto import (
    ideal_utilities,
    make_pareto_evaluator,
    random_choice_utilities,
    simplex_lattice,
)
from rlhf_core.optimize.tables import scores_to_tensor


def lattice_divisions(n_objectives: int, min_weights: int) -> int:
    """Smallest lattice resolution giving at least ``min_weights`` weight vectors.

    One objective has exactly one weight vector (``[1.0]``) at every resolution, so the answer is
    1; the search is bounded by ``min_weights`` divisions, which always suffice for two or more
    objectives (``C(d + S - 1, S - 1) >= d + 1``).

    Raises:
        ValueError: ``n_objectives < 1``.
    """
    if n_objectives < 1:
        raise ValueError(f"lattice needs at least one objective, got {n_objectives}")
    if n_objectives == 1:
        return 1
    for d in range(1, max(min_weights, 1) + 1):
        if comb(d + n_objectives - 1, n_objectives - 1) >= min_weights:
            return d
    return max(min_weights, 1)


def single_point_reason(summary: dict[str, Any]) -> str | None:
    """Why a front is one point (None when it has more): the summary says so instead of
    presenting a trade-off that does not exist."""
    if summary["n_front"] != 1:
        return None
    if len(summary["stakeholders"]) == 1:
        return "one stakeholder: nothing to trade off"
    if summary["prompts_without_allowed"] == summary["prompts"]:
        return "no prompt has an allowed response"
    return "every weight vector chooses the same responses: no trade-off in this data"


def compute_pareto(
    scores: pa.Table,
    stakeholders: Sequence[str],
    contract_weights: Sequence[float] | None = None,
    min_weights: int = 1000,
    seed: int = 0,
    prompt_clauses: Sequence[str] = (),
    utility_floor: Sequence[float] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Evaluate the weight simplex and summarise the trade-off.

    Args:
        scores: Scores table with ``u_<stakeholder>`` columns and ``veto``.
        stakeholders: Stakeholder names (objective order).
        contract_weights: The contract's own weights (normalised here), for regret.
        min_weights: Lattice size lower bound.
        seed: Monte Carlo seed (hypervolume beyond 3 stakeholders).
        prompt_clauses: ``v_<label>`` violation columns of FORALL / EXISTS clauses; failing prompts are
            left out (counted in ``prompts_without_allowed``).
        utility_floor: A lower bound per stakeholder utility (e.g. the contract's interval
            bounds or disagreement points). The hypervolume's reference point is the lowest of
            it, the random-choice point and every evaluated point, so an axis that is constant
            on the front (a utility every allowed response shares) does not zero the volume.

    Returns:
        ``(table, summary)``: one row per weight vector (``kind`` grid|contract, ``w_<s>``,
        ``u_<s>``, ``on_front``, ``is_knee``, ``is_nash``) and a dict with the front size,
        hypervolume (value, stderr, exact), knee / Nash / contract points, ideal and no-deal
        utilities, per-stakeholder regret at the contract's weights, and ``single_point``: why
        the front is one point (:func:`single_point_reason`), None when it is not.

    Raises:
        DataError: ``scores`` has no rows.
        SchemaMismatchError: A utility or clause column is missing.
    """
    if scores.num_rows == 0:
        raise DataError("the Pareto front needs scored responses and the scores table is empty; "
                        "score a run with at least one accepted response")
    t = scores_to_tensor(scores, stakeholders, prompt_clauses=prompt_clauses)
    n_s = len(stakeholders)
    allowed = jnp.asarray(t.valid & ~t.vetoed & t.prompt_ok[:, None])
    utils = jnp.asarray(t.utils)
    weights = simplex_lattice(n_s, lattice_divisions(n_s, min_weights))
    kinds = ["grid"] * len(weights)
    if contract_weights is not None:
        cw = np.asarray(contract_weights, np.float32)
        weights = np.vstack([weights, cw / cw.sum()])
        kinds.append("contract")
    points = np.asarray(make_pareto_evaluator()(jnp.asarray(weights), utils, allowed), np.float64)
    on_front = np.asarray(non_dominated(jnp.asarray(points)))
    front_idx = np.flatnonzero(on_front)
    uniq_pts, first = np.unique(points[front_idx], axis=0, return_index=True)
    uniq_idx = front_idx[first]
    ideal = np.asarray(ideal_utilities(utils, allowed), np.float64)
    no_deal = np.asarray(random_choice_utilities(utils, allowed), np.float64)
    ref = np.minimum(no_deal, points.min(axis=0))
    if utility_floor is not None:
        floor = np.asarray(utility_floor, np.float64)
        ref = np.where(np.isfinite(floor), np.minimum(ref, floor), ref)
    ref = ref - 1e-6 * np.maximum(ideal - ref, 1e-12)
    hv = hypervolume(uniq_pts, ref, key=jax.random.key(seed))
    knee = int(uniq_idx[knee_point(uniq_pts)])
    nash = nash_point(uniq_pts, no_deal)
    nash_row = int(uniq_idx[nash.index])
    cols: dict[str, Any] = {"kind": kinds}
    for j, s in enumerate(stakeholders):
        cols[f"w_{s}"] = weights[:, j].astype(np.float32)
    for j, s in enumerate(stakeholders):
        cols[f"u_{s}"] = points[:, j]
    rows = np.arange(len(weights))
    cols.update(on_front=on_front, is_knee=rows == knee, is_nash=rows == nash_row)

    def point(i: int) -> dict[str, dict[str, float]]:
        return {"weights": dict(zip(stakeholders, weights[i].tolist(), strict=True)),
                "utilities": dict(zip(stakeholders, points[i].tolist(), strict=True))}

    summary: dict[str, Any] = {
        "stakeholders": list(stakeholders),
        "n_weights": int((np.asarray(kinds) == "grid").sum()),
        "n_front": len(uniq_pts),
        "hypervolume": hv.value,
        "hypervolume_stderr": hv.stderr,
        "hypervolume_exact": hv.exact,
        "hypervolume_ref": ref.tolist(),
        "knee": point(knee),
        "nash": {**point(nash_row), "feasible": nash.feasible},
        "ideal": dict(zip(stakeholders, ideal.tolist(), strict=True)),
        "no_deal": dict(zip(stakeholders, no_deal.tolist(), strict=True)),
        "prompts": len(t.prompt_ids),
        "prompts_without_allowed": int((~np.asarray(allowed).any(axis=1)).sum()),
    }
    summary["single_point"] = single_point_reason(summary)
    if contract_weights is not None:
        summary["contract"] = point(len(weights) - 1)
        summary["regret"] = dict(zip(stakeholders, regret(ideal, points[-1]).tolist(), strict=True))
    return pa.table(cols), summary
