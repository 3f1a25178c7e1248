"""Readers for what only some runs produce: Pareto front, constrained policy (λ), DPO pairs, plan.

Each returns None when the run did not produce it, so the report can say so. Where they live:

* ``pareto`` table, run partition: the table of
  :func:`rlhf_core.optimize.compute_pareto` (``kind`` grid|contract, ``w_<s>``, ``u_<s>``,
  ``on_front``, ``is_knee``, ``is_nash``); optional ``artifacts/<run_id>/pareto.json`` (its summary).
* λ: ``artifacts/<run_id>/kl_policy.json`` (the summary the ``optimize-policy`` flow stores:
  ``lambda``, ``slack``, ``kl``, ``expected_reward``, ``budget``, ``beta`` ...), or Parquet metadata
  ``lambda`` / ``rlhf_wizard.lambda`` on the run's ``selections`` part.
* ``pairs`` table, run partition (TRL DPO format with ``strategy`` and ``margin``), and the
  selection counts ``artifacts/<run_id>/pairs.json`` (prompts excluded by a clause, ..., and the
  length gate: the pairs' length figures and the contract's ``max_chosen_longer`` verdict).
* ``plans`` table, run partition, and the Gantt chart ``reports/<run_id>/plan-gantt.png``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow.fs as pafs

from rlhf_core.errors import LakeError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake

_POLICY_KEYS = ("status", "lambda", "budget", "min_cost", "reference_cost", "cost_column", "beta",
                "slack", "kl", "expected_reward", "expected_cost", "active", "steps", "prompts")
_PAIR_COUNTS = ("prompts", "pairs", "excluded_clause", "no_allowed", "no_pair")
_POLICY_COUNTS = ("ties", "unpaired", "length_balanced_out", "labelled", "unscored", "unlabelled",
                  "clause_excluded", "label_ties", "vetoed_chosen", "disagreements_dropped",
                  "disagreements_flagged", "capped")
"""Counts of the pair policy, shown when non-zero."""


@dataclass(frozen=True)
class ParetoView:
    """The Pareto section: evaluated points and the marked ones.

    Attributes:
        stakeholders: Objective names.
        points: Utilities per evaluated weight vector, float64 ``[N, S]``.
        on_front: Non-dominated mask ``[N]``.
        contract: The contract's point ``[S]`` or None.
        nash: The Nash bargaining point ``[S]`` or None.
        knee: The knee point ``[S]`` or None.
        summary: The stored summary (hypervolume, regret ...) when present.
        annotators: Points of the weights calibrated to each criterion's labels, by label
            (``annotators: better``), from ``artifacts/<run_id>/calibration-*.json``.
    """

    stakeholders: tuple[str, ...]
    points: np.ndarray
    on_front: np.ndarray
    contract: np.ndarray | None
    nash: np.ndarray | None
    knee: np.ndarray | None
    summary: Mapping[str, Any] | None
    annotators: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanView:
    """The campaign plan section.

    Attributes:
        project: Project name.
        makespan: Planned makespan.
        algorithm: Search algorithm that found it.
        activities: ``{activity, start, finish, slack, critical}`` rows, by start.
        gantt_png: The Gantt chart the planner wrote, or None if absent.
    """

    project: str
    makespan: int
    algorithm: str
    activities: tuple[dict, ...]
    gantt_png: bytes | None


def _file_bytes(lake: Lake, relpath: str) -> bytes | None:
    path = lake.path(relpath)
    if lake.fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with lake.fs.open_input_file(path) as fh:
        return fh.read()


def read_json(lake: Lake, relpath: str) -> Any | None:
    """Parse a JSON file under the lake root; None when it does not exist.

    Raises:
        LakeError: If the file exists but is not valid JSON.
    """
    raw = _file_bytes(lake, relpath)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise LakeError(f"{lake.path(relpath)} is not valid JSON ({exc}); re-run the flow that writes it") from exc


def read_pareto(lake: Lake, run_id: str) -> ParetoView | None:
    """The run's Pareto table as points and marks, or None."""
    if not lake.part_paths(Table.PARETO, run_id):
        return None
    table = lake.read_table(Table.PARETO, run_id=run_id)
    names = tuple(c[2:] for c in table.column_names if c.startswith("w_"))
    if not names or any(f"u_{s}" not in table.column_names for s in names):
        return None  # one stakeholder is a front of one point: shown, without a chart
    points = np.column_stack([table.column(f"u_{s}").to_numpy(zero_copy_only=False) for s in names]).astype(float)

    def mask(column: str) -> np.ndarray:
        if column not in table.column_names:
            return np.zeros(table.num_rows, bool)
        return np.asarray(table.column(column).fill_null(False).to_numpy(zero_copy_only=False), bool)

    def first(m: np.ndarray) -> np.ndarray | None:
        idx = np.flatnonzero(m)
        return points[idx[0]] if len(idx) else None

    kinds = np.asarray(table.column("kind").to_pylist() if "kind" in table.column_names else [], object)
    contract = first(kinds == "contract") if len(kinds) else None
    return ParetoView(names, points, mask("on_front"), contract, first(mask("is_nash")),
                      first(mask("is_knee")), read_json(lake, f"artifacts/{run_id}/pareto.json"),
                      _calibrated_points(lake, run_id, names))


def _calibrated_points(lake: Lake, run_id: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``annotators: <criterion>`` -> utilities at the calibrated weights, for every record."""
    folder = lake.path("artifacts", run_id)
    try:
        infos = lake.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    except OSError:
        return {}
    out = {}
    for info in sorted(infos, key=lambda i: i.base_name):
        if not (info.base_name.startswith("calibration-") and info.base_name.endswith(".json")):
            continue
        doc = read_json(lake, f"artifacts/{run_id}/{info.base_name}")
        utilities = doc.get("utilities") if isinstance(doc, dict) else None
        if isinstance(utilities, dict) and all(n in utilities for n in names):
            out[f"annotators: {doc.get('criterion', '?')}"] = np.asarray(
                [float(utilities[n]) for n in names])
    return out


def read_policy(lake: Lake, run_id: str) -> dict[str, Any] | None:
    """λ and the constrained policy's summary for the run, or None when not computed."""
    doc = read_json(lake, f"artifacts/{run_id}/kl_policy.json")
    if isinstance(doc, dict) and "lambda" in doc:
        return {k: doc[k] for k in _POLICY_KEYS if k in doc}
    if lake.part_paths(Table.SELECTIONS, run_id):
        meta = lake.read_metadata(Table.SELECTIONS, run_id)
        for key in ("lambda", "rlhf_wizard.lambda"):
            if key in meta:
                return {"lambda": float(meta[key])}
    return None


@dataclass(frozen=True)
class PairsView:
    """The DPO pairs section.

    Attributes:
        by_strategy: ``{strategy, pairs, mean_margin, min_margin}`` rows.
        counts: Selection counts stored with the pairs (prompts, excluded_clause, ...), if any.
        length: The pairs' length figures and the contract's length gate (``length_gate`` of
            ``pairs.json``: shares, mean lengths, Cohen's d, ``max_chosen_longer``, ``passed``),
            when the selection stored them.
    """

    by_strategy: tuple[dict, ...]
    counts: Mapping[str, int]
    length: Mapping[str, Any] | None = None


def read_pairs(lake: Lake, run_id: str) -> PairsView | None:
    """DPO pair counts per strategy (with margin statistics), or None when no pairs were written."""
    if not lake.part_paths(Table.PAIRS, run_id):
        return None
    table = lake.read_table(Table.PAIRS, run_id=run_id)
    doc = read_json(lake, f"artifacts/{run_id}/pairs.json")
    doc = doc if isinstance(doc, dict) else {}
    counts = {k: int(doc[k]) for k in _PAIR_COUNTS if k in doc}
    counts.update({k: int(doc[k]) for k in _POLICY_COUNTS if doc.get(k)})
    length = doc.get("length_gate") if isinstance(doc.get("length_gate"), dict) else None
    if "strategy" not in table.column_names or "margin" not in table.column_names:
        return PairsView(({"strategy": "?", "pairs": table.num_rows, "mean_margin": None, "min_margin": None},),
                         counts, length)
    con = duckdb.connect()
    try:
        con.register("p", table.select(["strategy", "margin"]))
        rows = con.execute("SELECT strategy, count(*), avg(margin), min(margin) FROM p "
                           "GROUP BY strategy ORDER BY strategy").fetchall()
    finally:
        con.close()
    return PairsView(tuple({"strategy": s, "pairs": int(n), "mean_margin": m, "min_margin": lo}
                           for s, n, m, lo in rows), counts, length)


def read_plan(lake: Lake, run_id: str) -> PlanView | None:
    """The run's campaign plan and its Gantt PNG, or None when no plan exists."""
    png = _file_bytes(lake, f"reports/{run_id}/plan-gantt.png")
    if not lake.part_paths(Table.PLANS, run_id):
        return None if png is None else PlanView("?", 0, "?", (), png)
    table = lake.read_table(Table.PLANS, run_id=run_id).sort_by("start")
    rows = table.select(["activity", "start", "finish", "slack", "critical"]).to_pylist()
    first = table.slice(0, 1).to_pylist()[0] if table.num_rows else {}
    return PlanView(str(first.get("project", "?")), int(first.get("makespan", 0)),
                    str(first.get("algorithm", "?")), tuple(rows), png)
