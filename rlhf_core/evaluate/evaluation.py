"""Evaluate a contract against a run's human preference labels: the ``agreement`` and
``disagreements`` tables.

For every criterion of the run's ``preferences``:

* **signals** — accuracy (reward ties count ½), tie agreement and a prompt-bootstrap CI of the
  contract's reward, each stakeholder utility, each reward-model score (``rm_*`` columns), each
  of the contract's input columns (in the orientation that agrees more, so the best single
  column is a fair baseline) and the response length;
* **length** — the reward's accuracy on pairs whose chosen response is the longer vs the shorter
  one, so a contract that agrees only through length shows it;
* **group** — the reward's accuracy per subset of any grouping column (``source``, ``subset``,
  ``category``) and their unweighted mean (RewardBench's section mean);
* **clause** — per REQUIRES / INVARIANT clause, how often it flags the chosen vs the rejected
  response; a clause that flags chosen responses more often is ``flagged``.

``disagreements`` lists, per criterion, the strict pairs the reward ranks against the label by
the largest margin — the review list for a human.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.contract.program import ContractProgram
from rlhf_core.evaluate.agreement import agreement
from rlhf_core.evaluate.run_data import RunPairs
from rlhf_core.lake.catalog import AGREEMENT_SCHEMA, DISAGREEMENTS_SCHEMA

LENGTH_SIGNAL = "len(response)"
CLAUSE_KINDS = ("REQUIRES", "INVARIANT")

__all__ = ["CLAUSE_KINDS", "EvaluationConfig", "evaluate_pairs"]


@dataclass(frozen=True)
class EvaluationConfig:
    """Settings of an evaluation.

    Attributes:
        n_resamples: Bootstrap resamples over prompts (0: no intervals).
        seed: Bootstrap seed.
        level: Interval coverage.
        tie_tolerance: ``|reward(a) - reward(b)|`` at or below this is a tie of the signal.
        top_disagreements: Pairs kept per criterion in ``disagreements``.
    """

    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    tie_tolerance: float = 0.0
    top_disagreements: int = 50


def _signals(data: RunPairs, program: ContractProgram) -> list[tuple[str, str, np.ndarray]]:
    """``(name, kind, value per response)`` of every signal, the contract's reward first."""
    out = [("reward", "contract", data.column("reward"))]
    out += [(f"u_{s.name}", "utility", data.column(f"u_{s.name}")) for s in program.stakeholders]
    names = data.responses.schema.names
    out += [(n, "score", data.column(n)) for n in names if n.startswith("rm_")]
    seen = {n for n, _, _ in out}
    for decl in program.inputs:
        if decl.dtype != "str" and decl.name not in seen and decl.name in names:
            out.append((decl.name, "input", data.column(decl.name)))
            seen.add(decl.name)
    length = np.asarray(pc.utf8_length(data.responses.column("response")).to_numpy(), np.float64)
    out.append((LENGTH_SIGNAL, "length", length))
    return out


def _row(criterion: str, section: str, name: str, kind: str, **values: Any) -> dict[str, Any]:
    row = {"criterion": criterion, "section": section, "name": name, "kind": kind, "group": None,
           "n_pairs": 0, "n_ties": 0, "accuracy": None, "ci_low": None, "ci_high": None,
           "tie_agreement": None, "chosen_rate": None, "rejected_rate": None, "flagged": False}
    row.update(values)
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}


def _stats_rows(criterion: str, section: str, names: list[tuple[str, str, str | None]],
                diffs: np.ndarray, label: np.ndarray, groups: np.ndarray,
                cfg: EvaluationConfig) -> list[dict[str, Any]]:
    st = agreement(diffs, label, groups, n_resamples=cfg.n_resamples, seed=cfg.seed,
                   tie_tolerance=cfg.tie_tolerance, level=cfg.level)
    return [_row(criterion, section, name, kind, group=group, n_pairs=int(st.n_pairs[j]),
                 n_ties=int(st.n_ties[j]), accuracy=float(st.accuracy[j]),
                 ci_low=float(st.ci_low[j]), ci_high=float(st.ci_high[j]),
                 tie_agreement=float(st.tie_agreement[j]))
            for j, (name, kind, group) in enumerate(names)]


def _criterion_rows(data: RunPairs, program: ContractProgram, criterion: str,
                    signals: list[tuple[str, str, np.ndarray]],
                    cfg: EvaluationConfig) -> list[dict[str, Any]]:
    label = data.label(criterion)
    known = label != -128
    label, a, b, groups = label[known], data.row_a[known], data.row_b[known], data.prompt_group[known]
    diffs = np.stack([v[a] - v[b] for _, _, v in signals], axis=1) if len(label) else \
        np.zeros((0, len(signals)))
    rows = _stats_rows(criterion, "signal", [(n, k, None) for n, k, _ in signals], diffs, label,
                       groups, cfg)
    # Inputs are oriented "higher is better" as stored; a column that agrees less than half the
    # time is reported negated, so the best single input is an honest baseline.
    for row, (name, kind, _) in zip(rows, signals, strict=True):
        if kind == "input" and row["accuracy"] is not None and row["accuracy"] < 0.5:
            j = [n for n, _, _ in signals].index(name)
            row.update(_stats_rows(criterion, "signal", [(f"-{name}", kind, None)],
                                   -diffs[:, j:j + 1], label, groups, cfg)[0])
    inputs = [r for r in rows if r["kind"] == "input" and r["accuracy"] is not None]
    if inputs:
        best = max(inputs, key=lambda r: r["accuracy"])
        rows.append({**best, "kind": "best_input"})
    strict = label != 0
    length = signals[-1][2]
    chosen_len = np.where(label > 0, length[a], length[b])
    rejected_len = np.where(label > 0, length[b], length[a])
    for name, mask in (("chosen_longer", strict & (chosen_len > rejected_len)),
                       ("chosen_shorter", strict & (chosen_len < rejected_len))):
        rows += _stats_rows(criterion, "length", [("reward", "contract", name)], diffs[mask, :1],
                            label[mask], groups[mask], cfg)
    for column, values in data.groups().items():
        vals = values[known]
        per_group = []
        for value in sorted({v for v in vals.tolist() if v is not None}, key=str):
            mask = vals == value
            per_group += _stats_rows(criterion, "group", [("reward", "contract", f"{column}={value}")],
                                     diffs[mask, :1], label[mask], groups[mask], cfg)
        rows += per_group
        accs = [r["accuracy"] for r in per_group if r["accuracy"] is not None]
        rows.append(_row(criterion, "group", "reward", "contract", group=f"{column}=mean",
                         n_pairs=sum(r["n_pairs"] for r in per_group),
                         accuracy=float(np.mean(accs)) if accs else None))
    rows += _clause_rows(data, program, criterion, label, a, b)
    return rows


def _clause_rows(data: RunPairs, program: ContractProgram, criterion: str, label: np.ndarray,
                 a: np.ndarray, b: np.ndarray) -> list[dict[str, Any]]:
    strict = label != 0
    chosen = np.where(label > 0, a, b)[strict]
    rejected = np.where(label > 0, b, a)[strict]
    rows = []
    for clause in program.clauses:
        if clause.kind not in CLAUSE_KINDS:
            continue
        flags = data.column(f"v_{clause.label}")
        c_rate = float(np.mean(flags[chosen])) if len(chosen) else float("nan")
        r_rate = float(np.mean(flags[rejected])) if len(rejected) else float("nan")
        rows.append(_row(criterion, "clause", clause.label, clause.kind, n_pairs=int(len(chosen)),
                         chosen_rate=c_rate, rejected_rate=r_rate,
                         flagged=bool(len(chosen)) and c_rate > r_rate))
    return rows


def _disagreements(data: RunPairs, program: ContractProgram, criterion: str,
                   cfg: EvaluationConfig) -> dict[str, list[Any]]:
    label = data.label(criterion)
    reward = data.column("reward")
    strict = (label == 1) | (label == -1)
    idx = np.flatnonzero(strict)
    chosen = np.where(label[idx] > 0, data.row_a[idx], data.row_b[idx])
    rejected = np.where(label[idx] > 0, data.row_b[idx], data.row_a[idx])
    against = reward[rejected] - reward[chosen]
    order = np.argsort(-against, kind="stable")
    order = order[against[order] > 0][: cfg.top_disagreements]
    utilities = [f"u_{s.name}" for s in program.stakeholders]
    util = {u: data.column(u) for u in utilities}
    clauses = [c.label for c in program.clauses]
    flags = {c: data.column(f"v_{c}") for c in clauses}
    veto = data.column("veto")
    texts = data.responses.column("response")
    prompts = data.responses.column("prompt")
    out: dict[str, list[Any]] = {n: [] for n in DISAGREEMENTS_SCHEMA.names}
    for rank, k in enumerate(order, start=1):
        c, r = int(chosen[k]), int(rejected[k])
        out["criterion"].append(criterion)
        out["rank"].append(rank)
        out["pair_id"].append(data.pairs.column("pair_id")[int(idx[k])].as_py())
        out["prompt_id"].append(data.pairs.column("prompt_id")[int(idx[k])].as_py())
        out["prompt"].append(prompts[c].as_py())
        out["chosen_id"].append(data.responses.column("response_id")[c].as_py())
        out["rejected_id"].append(data.responses.column("response_id")[r].as_py())
        out["chosen"].append(texts[c].as_py())
        out["rejected"].append(texts[r].as_py())
        out["chosen_reward"].append(float(reward[c]))
        out["rejected_reward"].append(float(reward[r]))
        out["margin_against"].append(float(against[k]))
        out["chosen_utilities"].append(json.dumps({u: float(util[u][c]) for u in utilities}))
        out["rejected_utilities"].append(json.dumps({u: float(util[u][r]) for u in utilities}))
        out["chosen_flags"].append([x for x in clauses if flags[x][c] > 0])
        out["rejected_flags"].append([x for x in clauses if flags[x][r] > 0])
        out["chosen_vetoed"].append(bool(veto[c] > 0))
        out["rejected_vetoed"].append(bool(veto[r] > 0))
    return out


def evaluate_pairs(data: RunPairs, program: ContractProgram,
                   config: EvaluationConfig | None = None) -> tuple[pa.Table, pa.Table]:
    """The ``agreement`` and ``disagreements`` tables of a run's labelled pairs.

    Args:
        data: The run's aligned pairs (:func:`rlhf_core.evaluate.run_data.load_run_pairs`).
        program: The contract the run was scored with.
        config: Bootstrap and review-list settings.

    Returns:
        ``(agreement, disagreements)`` in the catalog's schemas.
    """
    cfg = config or EvaluationConfig()
    signals = _signals(data, program)
    rows: list[dict[str, Any]] = []
    review: dict[str, list[Any]] = {n: [] for n in DISAGREEMENTS_SCHEMA.names}
    for criterion in data.criteria:
        rows += _criterion_rows(data, program, criterion, signals, cfg)
        for name, values in _disagreements(data, program, criterion, cfg).items():
            review[name] += values
    agreement_table = pa.Table.from_pylist(rows, schema=AGREEMENT_SCHEMA)
    return agreement_table, pa.Table.from_pydict(review, schema=DISAGREEMENTS_SCHEMA)
