"""Calibrate a contract to one criterion of a scored run, and record where it lands.

Besides the weights and held-out accuracies (:mod:`rlhf_core.evaluate.calibrate`), the record
holds the stakeholders' utilities when choosing by the calibrated weights — the point the
report draws on the Pareto plot as ``annotators: <criterion>`` — and is stored as
``artifacts/<run_id>/calibration-<criterion>.json`` in the lake, with an audit entry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from rlhf_core.contract.program import ContractProgram
from rlhf_core.evaluate.calibrate import (
    CalibrationConfig,
    CalibrationResult,
    calibrate_weights,
    calibration_data,
)
from rlhf_core.evaluate.run_data import RunPairs
from rlhf_core.lake.store import Lake
from rlhf_core.optimize.pareto import make_pareto_evaluator
from rlhf_core.optimize.tables import scores_to_tensor
from rlhf_core.scoring.schema import quantifier_columns
from rlhf_core.security.audit import AuditLog

__all__ = ["RunCalibration", "calibrate_criterion", "calibration_path", "read_calibrations",
           "write_calibration"]


@dataclass(frozen=True)
class RunCalibration:
    """A calibration of one criterion of one run.

    Attributes:
        run_id: The run.
        criterion: The criterion whose labels the weights explain.
        result: Weights, scale, held-out accuracies.
        utilities: Mean utility per stakeholder when each prompt's response is chosen by the
            calibrated weights (the Pareto plot's point), or None when the rule has no front.
    """

    run_id: str
    criterion: str
    result: CalibrationResult
    utilities: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"run_id": self.run_id, "criterion": self.criterion, **asdict(self.result),
                "utilities": self.utilities}


def calibration_path(run_id: str, criterion: str) -> str:
    """Lake-relative path of a calibration record."""
    return f"artifacts/{run_id}/calibration-{criterion}.json"


def calibrate_criterion(pairs: RunPairs, program: ContractProgram, criterion: str,
                        config: CalibrationConfig | None = None) -> RunCalibration:
    """Calibrate ``program``'s weights to ``criterion`` and place them on the run's front.

    Raises:
        ContractError: The rule has no weights. DataError: too few pairs or prompts.
    """
    result = calibrate_weights(program, calibration_data(pairs, program, criterion), config)
    names = [s.name for s in program.stakeholders]
    tensor = scores_to_tensor(pairs.scores, names, prompt_clauses=quantifier_columns(program))
    allowed = jnp.asarray(tensor.valid & ~tensor.vetoed & tensor.prompt_ok[:, None])
    weights = jnp.asarray([[result.weights[n] for n in names]], jnp.float32)
    point = np.asarray(make_pareto_evaluator()(weights, jnp.asarray(tensor.utils), allowed))[0]
    return RunCalibration(pairs.run_id, criterion, result,
                          dict(zip(names, (float(v) for v in point), strict=True)))


def write_calibration(lake: Lake, calibration: RunCalibration) -> str:
    """Store the record (atomically) and audit it; returns its path."""
    path = lake.write_file_atomic(calibration_path(calibration.run_id, calibration.criterion),
                                  json.dumps(calibration.to_dict(), indent=2).encode("utf-8"))
    r = calibration.result
    AuditLog(lake).append("contract_calibrated", calibration.run_id, {
        "criterion": calibration.criterion, "weights": r.weights, "method": r.method,
        "heldout_accuracy": r.heldout_accuracy,
        "contract_heldout_accuracy": r.contract_heldout_accuracy})
    return path


def read_calibrations(lake: Lake, run_id: str, criteria: list[str]) -> list[dict[str, Any]]:
    """The stored calibration records of ``run_id`` for ``criteria`` (missing ones skipped)."""
    out = []
    for criterion in criteria:
        path = lake.path(calibration_path(run_id, criterion))
        try:
            with lake.fs.open_input_file(path) as fh:
                out.append(json.loads(fh.read()))
        except (FileNotFoundError, OSError):
            continue
    return out
