"""The demo's synthetic labels: drawn from hidden weights, ingested natively, recovered by calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlhf_core.contract import load_contract
from rlhf_core.evaluate import EvaluationConfig, evaluate_run
from rlhf_core.evaluate.calibrate import CalibrationConfig
from rlhf_core.evaluate.calibration_run import calibrate_criterion
from rlhf_core.evaluate.run_data import load_run_pairs
from rlhf_core.ingest.generator import PREFERENCES_DIR, generate_table, write_synthetic
from rlhf_core.ingest.labels import ANNOTATOR_WEIGHTS, annotator_preferences, within_prompt_pairs
from rlhf_core.ingest.write import read_source, write_ingest
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from rlhf_core.scoring import score_table
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "configs" / "contracts" / "demo.yaml"


def test_pairs_stay_within_prompts() -> None:
    prompts = np.array(["a"] * 4 + ["b"] * 1 + ["c"] * 3 + ["d"] * 6, dtype=object)
    a, b = within_prompt_pairs(prompts)
    assert (prompts[a] == prompts[b]).all() and (a < b).all()
    per = {p: int((prompts[a] == p).sum()) for p in "abcd"}
    assert per == {"a": 6, "b": 0, "c": 3, "d": 5 + 4}  # all pairs up to 4, then (i,i+1),(i,i+2)


def test_labels_are_seeded_and_follow_the_hidden_reward() -> None:
    program = load_contract(DEMO).program
    table = generate_table(4_000, seed=3)
    first = annotator_preferences(table, program, seed=1)
    assert first.equals(annotator_preferences(table, program, seed=1))
    assert not first.equals(annotator_preferences(table, program, seed=2))
    label = first.column("better").to_numpy()
    assert set(np.unique(label)) <= {-1, 0, 1} and (label == 0).any()  # both vetoed -> tie
    # A much more decisive annotator agrees with its own reward's ranking almost always.
    sharp = annotator_preferences(table, program, seed=1, scale=1e4).column("better").to_numpy()
    assert (sharp[label != 0] == label[label != 0]).mean() > 0.7


def test_generated_labels_round_trip_and_calibration_recovers_the_weights(tmp_path: Path) -> None:
    program = load_contract(DEMO).program
    data = tmp_path / "data"
    write_synthetic(data, 24_000, seed=5, annotators=program)
    assert sorted(p.name for p in (data / PREFERENCES_DIR).iterdir()) == ["part-00000.parquet"]
    lake = Lake(tmp_path / "lake")
    written = write_ingest(lake, "demo", read_source(data, run_id="demo"))
    assert written.gated.responses.num_rows == 24_000  # labels are not read as responses
    assert written.gated.preferences.num_rows == 6 * 6_000
    responses = lake.read_run(Table.RESPONSES, "demo")
    scores = score_table(program, responses, id_columns=["prompt_id", "response_id"])
    lake.write_partition(Table.SCORES, "demo", scores, scores.schema)
    pairs = load_run_pairs(lake, "demo", program)
    fitted = calibrate_criterion(pairs, program, "better", CalibrationConfig(folds=3))
    for name, truth in ANNOTATOR_WEIGHTS.items():
        assert fitted.result.weights[name] == pytest.approx(truth, abs=0.05)  # stated tolerance
    assert fitted.result.heldout_accuracy >= fitted.result.contract_heldout_accuracy
    evaluation = evaluate_run(lake, "demo", program, config=EvaluationConfig(n_resamples=50))
    reward = [r for r in evaluation.agreement.to_pylist() if r["name"] == "reward"][0]
    assert 0.7 < reward["accuracy"] < 0.95  # agrees well, not perfectly: the weights differ
    # Regenerating without labels removes the old ones, so a stale label set never lingers.
    write_synthetic(data, 24_000, seed=5)
    assert not list((data / PREFERENCES_DIR).glob("*.parquet"))
