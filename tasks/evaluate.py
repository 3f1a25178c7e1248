"""Task ``evaluate-agreement``: compare a scored run with its preference labels."""

from __future__ import annotations

import json
from typing import Any

from prefect import task
from prefect.artifacts import create_table_artifact

from rlhf_core.contract import load_contract
from rlhf_core.evaluate import (
    EvaluationConfig,
    calibrate_run,
    evaluate_run,
    summarise,
    write_evaluation,
)
from rlhf_core.lake.store import Lake
from tasks.policies import IO_RETRY_OPTIONS


@task(name="evaluate-agreement", **IO_RETRY_OPTIONS)
def evaluate_agreement(contract_path: str, run_id: str, lake_root: str,
                       criteria: list[str] | None = None, n_resamples: int = 1000,
                       seed: int = 0, calibrate: bool = True) -> dict[str, Any]:
    """Write ``agreement`` and ``disagreements`` for ``run_id`` and, with ``calibrate``, the
    weights that best explain each criterion; return the summary.

    Raises:
        DataError: The run lacks labels, scores, a criterion or a contract input.
    """
    lake = Lake(lake_root)
    program = load_contract(contract_path).program
    evaluation = evaluate_run(lake, run_id, program, criteria,
                              EvaluationConfig(n_resamples=n_resamples, seed=seed))
    paths = write_evaluation(lake, run_id, evaluation)
    calibration = calibrate_run(lake, run_id, program, criteria) if calibrate else {}
    summary = {**summarise(evaluation), "paths": paths, "calibration": calibration}
    lake.write_file_atomic(f"artifacts/{run_id}/agreement.json",
                           json.dumps(summary, default=str, indent=2).encode())
    rows = [r for r in evaluation.agreement.to_pylist() if r["section"] == "signal"]
    create_table_artifact(
        table=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                if k in ("criterion", "name", "kind", "n_pairs", "accuracy", "ci_low", "ci_high")}
               for r in rows],
        key=f"agreement-{''.join(c if c.isalnum() else '-' for c in run_id.lower())}"[:100],
        description=f"Agreement of run {run_id}'s reward and signals with its annotators",
    )
    return summary
