"""Calibration: recovers known weights, matches the scored reward, writes a new unsigned version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.contract import load_contract, load_contract_text
from rlhf_core.errors import ContractError
from rlhf_core.evaluate.calibrate import (
    CalibrationConfig,
    CalibrationData,
    _reward_fn,
    calibrate_weights,
    calibration_data,
)
from rlhf_core.evaluate.run_data import load_run_pairs
from rlhf_core.lake.store import Lake
from tests.conftest import REPO_ROOT
from tests.evaluate.test_evaluate_run import _scored_run

CONTRACTS = REPO_ROOT / "configs" / "contracts"
TOY = """
contract: toy
version: 1.0.0
description: three stakeholders over three inputs
inputs:
  x: {dtype: float, range: [0, 1]}
  y: {dtype: float, range: [0, 1]}
  z: {dtype: float, range: [0, 1]}
stakeholders:
  - {name: a, weight: 1, utility: x}
  - {name: b, weight: 1, utility: y}
  - {name: c, weight: 1, utility: z}
aggregation: {rule: RULE}
approval: {quorum: 1}
"""
TRUE_WEIGHTS = np.array([0.6, 0.3, 0.1])


def _generated(n: int = 20_000, seed: int = 0, beta: float = 12.0) -> CalibrationData:
    """Pairs labelled by a Bradley–Terry draw from the known weights."""
    rng = np.random.default_rng(seed)
    u_a, u_b = rng.random((n, 3)), rng.random((n, 3))
    p = 1.0 / (1.0 + np.exp(-beta * ((u_a - u_b) @ TRUE_WEIGHTS)))
    label = (rng.random(n) < p).astype(np.float32)
    zeros = np.zeros(n)
    return CalibrationData(u_a, u_b, zeros.astype(bool), zeros.astype(bool), zeros, zeros, label,
                           rng.integers(0, n // 10, n))


def test_weighted_sum_recovers_the_generating_weights() -> None:
    program = load_contract_text(TOY.replace("RULE", "weighted_sum")).program
    result = calibrate_weights(program, _generated(), CalibrationConfig(folds=3))
    recovered = np.array([result.weights[k] for k in "abc"])
    np.testing.assert_allclose(recovered, TRUE_WEIGHTS, atol=0.03)  # stated tolerance
    assert abs(result.scale - 12.0) < 1.5 and result.method == "lbfgs"
    assert result.heldout_accuracy > result.contract_heldout_accuracy + 0.05


def test_max_min_uses_the_search_and_beats_equal_weights() -> None:
    program = load_contract_text(TOY.replace("RULE", "max_min")).program
    result = calibrate_weights(program, _generated(8_000, seed=1), CalibrationConfig(folds=3))
    assert result.method == "snes"
    assert result.heldout_accuracy > result.contract_heldout_accuracy
    assert sum(result.weights.values()) == pytest.approx(1.0, abs=1e-5)


def test_rules_without_weights_are_refused() -> None:
    program = load_contract_text(TOY.replace("RULE", "utilitarian")).program
    with pytest.raises(ContractError, match="utilitarian rule has no weights to calibrate"):
        calibrate_weights(program, _generated(100), CalibrationConfig(folds=0))


def test_reward_at_the_contract_weights_is_the_scored_reward(tmp_path: Path, shared_data: Path) -> None:
    lake = Lake(tmp_path)
    loaded = _scored_run(lake, "pku", CONTRACTS / "pku_saferlhf.yaml",
                         shared_data / "preferences" / "pku_saferlhf_train500.jsonl", "pku_saferlhf")
    pairs = load_run_pairs(lake, "pku", loaded.program)
    data = calibration_data(pairs, loaded.program, "better")
    w = np.asarray([s.weight for s in loaded.program.stakeholders], np.float32)
    mine = np.asarray(_reward_fn(loaded.program)(w, data.u_a, data.fixed_a, data.penalty_a))
    label = pairs.label("better")
    strict = (label == 1) | (label == -1)
    stored = pairs.column("reward")[pairs.row_a[strict]]
    np.testing.assert_allclose(mine, stored, atol=1e-5)


@pytest.mark.parametrize(("contract", "source", "adapter"), [
    ("helpsteer.yaml", "helpsteer_train500.jsonl", "helpsteer"),
    ("ultrafeedback.yaml", "ultrafeedback_binarized_train1000.jsonl", "ultrafeedback"),
])
def test_cli_writes_an_unapproved_new_version_that_changes_only_weights(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, contract: str,
        source: str, adapter: str) -> None:
    lake = Lake(tmp_path / "lake")
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(tmp_path / "lake"))
    _scored_run(lake, "real", CONTRACTS / contract, shared_data / "preferences" / source, adapter)
    runner = CliRunner()
    out = tmp_path / "v2.yaml"
    result = runner.invoke(app, ["contract", "calibrate", str(CONTRACTS / contract), "--run", "real",
                                 "--criterion", "better", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    old, new = load_contract(CONTRACTS / contract), load_contract(out)
    assert new.hash != old.hash and new.spec.supersedes == old.hash
    assert doc["heldout_accuracy"] is not None and doc["contract_heldout_accuracy"] is not None
    paths = {c["path"] for c in doc["diff"]["changes"]}
    assert paths - {"version", "supersedes"} <= {f"stakeholders.{s.name}.weight"
                                               for s in old.program.stakeholders}
    assert {s.name: s.weight for s in new.program.stakeholders} == pytest.approx(doc["weights"], abs=1e-5)
    verify = runner.invoke(app, ["contract", "verify", str(out)])
    assert verify.exit_code == 1 and "not approved" in (verify.output + str(verify.exception))
    diff = runner.invoke(app, ["contract", "diff", str(CONTRACTS / contract), str(out)])
    assert diff.exit_code == 0 and ".weight:" in diff.output
    again = runner.invoke(app, ["contract", "calibrate", str(CONTRACTS / contract), "--run", "real",
                                "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in str(again.exception)
