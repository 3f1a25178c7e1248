"""Does the contract agree with the annotators? Agreement with a run's preference labels.

Public API::

    evaluate_run(lake, run_id, program, criteria=None, config=None) -> Evaluation   # reads only
    write_evaluation(lake, run_id, evaluation) -> dict[str, str]  # agreement + disagreements
    agreement(diffs, label, groups, n_resamples=1000, ...) -> AgreementStats        # the metrics
    EvaluationConfig(n_resamples, seed, level, tie_tolerance, top_disagreements)
    calibrate_run(lake, run_id, program, criteria=None) -> {criterion: record}  # weights per label
    calibrate_weights(program, CalibrationData, config) -> CalibrationResult
"""

from __future__ import annotations

from rlhf_core.evaluate.agreement import AgreementStats, agreement, bootstrap_accuracy
from rlhf_core.evaluate.calibrate import CalibrationConfig, CalibrationResult, calibrate_weights
from rlhf_core.evaluate.evaluation import EvaluationConfig, evaluate_pairs
from rlhf_core.evaluate.run import (
    Evaluation,
    calibrate_run,
    evaluate_run,
    summarise,
    write_evaluation,
)
from rlhf_core.evaluate.run_data import RunPairs, load_run_pairs

__all__ = [
    "AgreementStats", "CalibrationConfig", "CalibrationResult", "Evaluation", "EvaluationConfig",
    "RunPairs", "agreement", "calibrate_run", "calibrate_weights",
    "bootstrap_accuracy", "evaluate_pairs", "evaluate_run", "load_run_pairs", "summarise",
    "write_evaluation",
]
