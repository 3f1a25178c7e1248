"""Evaluate a scored run against its preference labels and publish the result to the lake.

:func:`evaluate_run` only reads; :func:`write_evaluation` checks both tables with their quality
suites first and then writes them (each partition replaced atomically), so a bad evaluation
writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import ContractError, DataError, first_line
from rlhf_core.evaluate.calibrate import CalibrationConfig
from rlhf_core.evaluate.calibration_run import calibrate_criterion, write_calibration
from rlhf_core.evaluate.evaluation import EvaluationConfig, evaluate_pairs
from rlhf_core.evaluate.run_data import load_run_pairs
from rlhf_core.lake.catalog import AGREEMENT_SCHEMA, DISAGREEMENTS_SCHEMA, Table
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import AuditLog

__all__ = ["Evaluation", "calibrate_run", "evaluate_run", "summarise", "write_evaluation"]


@dataclass(frozen=True)
class Evaluation:
    """A run's agreement with its annotators.

    Attributes:
        run_id: The run.
        criteria: The criteria evaluated.
        agreement: Rows of the ``agreement`` table.
        disagreements: Rows of the ``disagreements`` table.
        pairs: Labelled pairs with both responses scored.
        unscored: Labelled pairs left out (a response was quarantined or not scored).
    """

    run_id: str
    criteria: tuple[str, ...]
    agreement: pa.Table
    disagreements: pa.Table
    pairs: int
    unscored: int


def evaluate_run(lake: Lake, run_id: str, program: ContractProgram,
                 criteria: Sequence[str] | None = None,
                 config: EvaluationConfig | None = None) -> Evaluation:
    """Compare the run's reward, utilities and input columns with its preference labels.

    Raises:
        DataError: The run lacks preference labels, scores, a criterion or a contract input
            (one line naming the run and what is missing).
    """
    data = load_run_pairs(lake, run_id, program, criteria)
    agreement, disagreements = evaluate_pairs(data, program, config)
    return Evaluation(run_id, data.criteria, agreement, disagreements, data.pairs.num_rows,
                      data.unscored)


def calibrate_run(lake: Lake, run_id: str, program: ContractProgram,
                  criteria: Sequence[str] | None = None,
                  config: CalibrationConfig | None = None) -> dict[str, Any]:
    """Calibrate the weights to each criterion and store the records (see
    :mod:`rlhf_core.evaluate.calibration_run`).

    Returns:
        Per criterion, the record's JSON form, or ``{"skipped": reason}`` when the contract's
        rule has no weights or the run has too few labelled prompts.
    """
    pairs = load_run_pairs(lake, run_id, program, criteria)
    out: dict[str, Any] = {}
    for criterion in pairs.criteria:
        try:
            calibration = calibrate_criterion(pairs, program, criterion, config)
        except (ContractError, DataError) as exc:
            out[criterion] = {"skipped": first_line(exc)}
            continue
        write_calibration(lake, calibration)
        out[criterion] = calibration.to_dict()
    return out


def write_evaluation(lake: Lake, run_id: str, evaluation: Evaluation) -> dict[str, str]:
    """Quality-check and write ``agreement`` and ``disagreements`` for ``run_id``, audited.

    Raises:
        QualityGateError: A table breaks its suite (nothing is written).
    """
    from rlhf_core.quality.gx import check_table

    for table, schema, data in ((Table.AGREEMENT, AGREEMENT_SCHEMA, evaluation.agreement),
                                (Table.DISAGREEMENTS, DISAGREEMENTS_SCHEMA,
                                 evaluation.disagreements)):
        check_table(table.value, data.cast(schema), run_id=run_id, max_failure_rate=0.0)
    paths = {
        "agreement": lake.write_partition(Table.AGREEMENT, run_id, evaluation.agreement,
                                          AGREEMENT_SCHEMA),
        "disagreements": lake.write_partition(Table.DISAGREEMENTS, run_id,
                                              evaluation.disagreements, DISAGREEMENTS_SCHEMA),
    }
    reward = {c: r["accuracy"] for r in evaluation.agreement.to_pylist()
              for c in [r["criterion"]] if r["section"] == "signal" and r["name"] == "reward"}
    AuditLog(lake).append("evaluation_written", run_id, {
        "criteria": list(evaluation.criteria), "pairs": evaluation.pairs,
        "reward_accuracy": reward, "disagreements": evaluation.disagreements.num_rows})
    return paths


def summarise(evaluation: Evaluation) -> dict[str, Any]:
    """A JSON-able summary: per criterion, the reward's and the best single column's accuracy
    with intervals, every signal, and the flagged clauses."""
    out: dict[str, Any] = {"run_id": evaluation.run_id, "pairs": evaluation.pairs,
                           "unscored_pairs": evaluation.unscored, "criteria": {}}
    rows = evaluation.agreement.to_pylist()
    for criterion in evaluation.criteria:
        mine = [r for r in rows if r["criterion"] == criterion]
        signals = {r["name"]: {k: r[k] for k in ("kind", "accuracy", "ci_low", "ci_high",
                                                  "n_pairs", "n_ties", "tie_agreement")}
                   for r in mine if r["section"] == "signal" and r["kind"] != "best_input"}
        best = next((r for r in mine if r["kind"] == "best_input"), None)
        out["criteria"][criterion] = {
            "reward": signals.get("reward"),
            "best_input": None if best is None else {"name": best["name"],
                                                     "accuracy": best["accuracy"]},
            "signals": signals,
            "length": {r["group"]: r["accuracy"] for r in mine if r["section"] == "length"},
            "groups": {r["group"]: r["accuracy"] for r in mine if r["section"] == "group"},
            "flagged_clauses": [r["name"] for r in mine if r["section"] == "clause"
                                and r["flagged"]],
        }
    return out
