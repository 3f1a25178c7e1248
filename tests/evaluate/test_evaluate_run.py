"""Evaluating scored runs against their preference labels: real datasets, tables, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rlhf_core.contract import load_contract
from rlhf_core.errors import DataError
from rlhf_core.evaluate import EvaluationConfig, evaluate_run, summarise, write_evaluation
from rlhf_core.ingest.write import read_source, write_ingest
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from rlhf_core.report.build import build_report
from rlhf_core.scoring import score_table
from tests.conftest import REPO_ROOT

CONTRACTS = REPO_ROOT / "configs" / "contracts"
FAST = EvaluationConfig(n_resamples=100, top_disagreements=10)


def _scored_run(lake: Lake, run_id: str, contract: Path, source: Path, adapter: str):
    loaded = load_contract(contract)
    write_ingest(lake, run_id, read_source(source, run_id=run_id, adapter=adapter),
                 max_failure_rate=0.5)
    responses = lake.read_run(Table.RESPONSES, run_id)
    scores = score_table(loaded.program, responses, id_columns=["prompt_id", "response_id"])
    lake.write_partition(Table.SCORES, run_id, scores, scores.schema)
    return loaded


def _rows(table: pa.Table, **match) -> list[dict]:
    return [r for r in table.to_pylist() if all(r[k] == v for k, v in match.items())]


def test_pku_both_criteria_signals_clauses_and_review_list(tmp_path: Path, shared_data: Path) -> None:
    lake = Lake(tmp_path)
    loaded = _scored_run(lake, "pku", CONTRACTS / "pku_saferlhf.yaml",
                         shared_data / "preferences" / "pku_saferlhf_train500.jsonl", "pku_saferlhf")
    evaluation = evaluate_run(lake, "pku", loaded.program, config=FAST)
    assert evaluation.criteria == ("better", "safer")
    for criterion in ("better", "safer"):
        reward = _rows(evaluation.agreement, criterion=criterion, section="signal", name="reward")[0]
        assert reward["n_pairs"] + reward["n_ties"] <= evaluation.pairs
        assert reward["ci_low"] <= reward["accuracy"] <= reward["ci_high"]
        kinds = {r["kind"] for r in _rows(evaluation.agreement, criterion=criterion, section="signal")}
        assert {"contract", "utility", "input", "length", "best_input"} <= kinds
        clauses = _rows(evaluation.agreement, criterion=criterion, section="clause")
        assert {r["kind"] for r in clauses} <= {"REQUIRES", "INVARIANT"} and clauses
        for r in clauses:
            assert r["flagged"] == (r["chosen_rate"] > r["rejected_rate"])
        lengths = _rows(evaluation.agreement, criterion=criterion, section="length")
        assert {r["group"] for r in lengths} == {"chosen_longer", "chosen_shorter"}
    # The contract vetoes unsafe responses, so on the safety criterion it must beat a coin.
    safer = _rows(evaluation.agreement, criterion="safer", section="signal", name="reward")[0]
    assert safer["ci_low"] > 0.5
    review = evaluation.disagreements.to_pylist()
    assert review and all(r["margin_against"] > 0 for r in review)
    assert [r["rank"] for r in review if r["criterion"] == "better"] == sorted(
        r["rank"] for r in review if r["criterion"] == "better")
    first = review[0]
    assert first["chosen_reward"] < first["rejected_reward"]
    assert set(json.loads(first["chosen_utilities"])) == {f"u_{s.name}" for s in loaded.program.stakeholders}
    paths = write_evaluation(lake, "pku", evaluation)
    assert lake.read_run(Table.AGREEMENT, "pku").num_rows == evaluation.agreement.num_rows
    assert set(paths) == {"agreement", "disagreements"}
    summary = summarise(evaluation)
    assert summary["criteria"]["safer"]["reward"]["accuracy"] == pytest.approx(safer["accuracy"])
    report = build_report(lake, "pku", audit=False)
    html = Path(report.path).read_text(encoding="utf-8")
    assert report.sections["agreement"]
    assert 'id="img-agreement"' in html and 'id="agreement-disagreements"' in html
    assert html.count("<tr class=\"hl\">") == 2  # the reward row of each criterion


def test_ultrafeedback_ties_are_reported_apart(tmp_path: Path, shared_data: Path) -> None:
    lake = Lake(tmp_path)
    loaded = _scored_run(lake, "uf", CONTRACTS / "ultrafeedback.yaml",
                         shared_data / "preferences" / "ultrafeedback_binarized_train1000.jsonl",
                         "ultrafeedback")
    evaluation = evaluate_run(lake, "uf", loaded.program, config=FAST)
    reward = _rows(evaluation.agreement, section="signal", name="reward")[0]
    labels = lake.read_run(Table.PREFERENCES, "uf").column("better").to_pylist()
    ties = labels.count(0)
    assert 100 <= ties <= 111  # 111 tied pairs in the file, less those quarantined
    assert reward["n_ties"] == ties and reward["n_pairs"] == evaluation.pairs - ties
    assert reward["tie_agreement"] is not None
    score = _rows(evaluation.agreement, section="signal", name="score")[0]
    assert score["accuracy"] == 1.0  # the labels come from this score


def test_group_breakdown_and_section_mean(tmp_path: Path, shared_data: Path) -> None:
    lake = Lake(tmp_path)
    loaded = _scored_run(lake, "hs", CONTRACTS / "helpsteer.yaml",
                         shared_data / "preferences" / "helpsteer_train500.jsonl", "helpsteer")
    # Give the responses two subsets so the breakdown has something to split.
    responses = lake.read_run(Table.RESPONSES, "hs")
    subset = pa.array(["even" if i % 2 else "odd" for i in range(responses.num_rows)])
    lake.write_partition(Table.RESPONSES, "hs", responses.append_column("subset", subset),
                         responses.schema.append(pa.field("subset", pa.string())))
    evaluation = evaluate_run(lake, "hs", loaded.program, config=FAST)
    groups = _rows(evaluation.agreement, section="group")
    per = [r for r in groups if r["group"] in ("subset=even", "subset=odd")]
    mean = [r for r in groups if r["group"] == "subset=mean"][0]
    assert len(per) == 2
    assert mean["accuracy"] == pytest.approx(np.mean([r["accuracy"] for r in per]))


def test_bad_input_names_the_run_and_writes_nothing(tmp_path: Path, shared_data: Path) -> None:
    lake = Lake(tmp_path)
    loaded = _scored_run(lake, "pku", CONTRACTS / "pku_saferlhf.yaml",
                         shared_data / "preferences" / "pku_saferlhf_train500.jsonl", "pku_saferlhf")
    with pytest.raises(DataError, match=r"^run pku has no preference criterion helpful; its "
                                        r"criteria: better, safer$"):
        evaluate_run(lake, "pku", loaded.program, criteria=["helpful"])
    with pytest.raises(DataError, match="run nope has no preferences"):
        evaluate_run(lake, "nope", loaded.program)
    other = load_contract(CONTRACTS / "ultrafeedback.yaml")
    with pytest.raises(DataError, match="run pku lacks the contract's inputs score"):
        evaluate_run(lake, "pku", other.program)
    demo = Lake(tmp_path / "demo")
    table = pa.table({"prompt_id": ["p"], "response_id": ["r"]})
    demo.write_partition(Table.RESPONSES, "gen", table, table.schema)
    with pytest.raises(DataError, match="run gen has no preferences"):
        evaluate_run(demo, "gen", loaded.program)
    assert not lake.part_paths(Table.AGREEMENT, "pku")
