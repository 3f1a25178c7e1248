"""The length gate (``selection.max_chosen_longer``) and ``length_balance``, end to end through the
``export-dpo-pairs`` task, the run summary, the report reader and ``rlhf-wizard export``; and one
``optimize-policy`` flow run whose contract pairs the dataset's own labels (``pairing: human``,
``ties: kto``) and exports (TRL unpaired format, https://huggingface.co/docs/trl/dataset_formats).

The biased run is made here: responses whose length grows with the one contract input, so the
chosen (higher-reward) response is usually the longer one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from rlhf_core.contract import load_contract
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.runs import record_run_end, record_run_start
from rlhf_core.lake.store import Lake
from rlhf_core.optimize.export import export_pairs
from rlhf_core.optimize.length_gate import LengthBiasError
from rlhf_core.report.build import build_report
from rlhf_core.report.optional_tables import read_pairs
from rlhf_core.report.summary import optimization_lines
from rlhf_core.scoring.score import score_table
from tasks.optimize import export_dpo_pairs
from tests.conftest import REPO_ROOT

PROBE = """contract: length-probe
version: 1.0.0
inputs:
  quality: {{dtype: float, range: [0, 1]}}
stakeholders:
  - {{name: users, weight: 1, utility: quality}}
aggregation: {{rule: weighted_sum}}
selection: {{{selection}}}
"""


def _biased_run(lake: Lake, run_id: str, contract: Path) -> None:
    rng = np.random.default_rng(5)
    n = 60 * 4
    quality = rng.random(n)
    chars = (5 + 40 * quality + rng.integers(0, 30, n)).astype(int)
    responses = pa.table({
        "prompt_id": [f"p{i // 4:03d}" for i in range(n)], "response_id": [f"r{i:04d}" for i in range(n)],
        "prompt": [f"question {i // 4}" for i in range(n)],
        "response": [f"{i:04d}" + "w" * int(k) for i, k in enumerate(chars)], "quality": quality})
    lake.write_partition(Table.RESPONSES, run_id, responses, responses.schema)
    scores = score_table(load_contract(contract).program, responses)
    lake.write_partition(Table.SCORES, run_id, scores, scores.schema)


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, dict]:
    """Two runs over the same biased data: the gate alone, and the gate with length_balance."""
    root = tmp_path_factory.mktemp("length-gate")
    lake = Lake(root / "home")
    results = {}
    for run_id, selection in (("biased", "pairing: all_pairs, max_chosen_longer: 0.65"),
                              ("balanced", "pairing: all_pairs, max_chosen_longer: 0.65, length_balance: true, "
                                           "seed: 3")):
        contract = root / f"{run_id}.yaml"
        contract.write_text(PROBE.format(selection=selection))
        record_run_start(lake, run_id, "optimize-policy", contract_hash=load_contract(contract).hash,
                         parameters={"contract": str(contract)})
        _biased_run(lake, run_id, contract)
        results[run_id] = export_dpo_pairs.fn(str(contract), run_id, str(lake.root))
        record_run_end(lake, run_id, "completed")
    return lake, results


def test_failed_gate_is_recorded_and_refuses_the_export_in_one_line(gated, tmp_path) -> None:
    lake, results = gated
    gate = results["biased"]["length_gate"]
    assert gate["passed"] is False and gate["chosen_longer_share"] > 0.65
    assert gate["expectation"]["expectation"] == "expect_column_mean_to_be_between"
    assert gate["expectation"]["observed_value"] == pytest.approx(gate["chosen_longer_share"], abs=1e-6)
    out = tmp_path / "pairs.jsonl"
    with pytest.raises(LengthBiasError) as refused:
        export_pairs("biased", out, lake)
    message = str(refused.value)
    assert "\n" not in message and not out.exists()
    share = re.search(r"in (\d+\.\d)% of (\d+) pairs", message)
    assert share and float(share.group(1)) == pytest.approx(100 * gate["chosen_longer_share"], abs=0.05)
    assert "max_chosen_longer 65.0%" in message and "length_balance: true" in message
    # The run itself went on: its summary and report say why the export will be refused.
    summary = "\n".join(optimization_lines({"pairs": results["biased"]}))
    assert "**Length gate failed**" in summary and "length_balance: true" in summary
    view = read_pairs(lake, "biased")
    assert view is not None and view.length is not None and view.length["passed"] is False
    html = Path(build_report(lake, "biased", audit=False).path).read_text()
    table = html[html.index('id="pair-length-bias"'):]
    assert f"{100 * gate['chosen_longer_share']:.2f}%" in table[:2000] and "failed (65.00%)" in table[:2000]


def test_cli_export_is_refused_by_the_gate(gated, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from rlhf_cli.main import app

    lake, _ = gated
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(lake.root))
    refused = CliRunner().invoke(app, ["export", "biased", "--out", str(tmp_path / "p.jsonl")])
    assert refused.exit_code != 0 and isinstance(refused.exception, LengthBiasError)
    assert not (tmp_path / "p.jsonl").exists()


def test_length_balance_passes_the_gate_and_the_figures_match_pandas(gated, tmp_path) -> None:
    lake, results = gated
    gate, counts = results["balanced"]["length_gate"], results["balanced"]
    assert gate["passed"] is True and counts["length_balanced_out"] > 0
    export_pairs("balanced", tmp_path / "pairs.jsonl", lake)
    frame = pd.read_json(tmp_path / "pairs.jsonl", lines=True)
    chosen, rejected = frame["chosen"].str.len(), frame["rejected"].str.len()
    longer, shorter = int((chosen > rejected).sum()), int((chosen < rejected).sum())
    assert abs(longer - shorter) <= 1 and len(frame) == counts["pairs"]
    pooled = np.sqrt((chosen.var() + rejected.var()) / 2)
    assert gate["chosen_longer_share"] == pytest.approx(longer / len(frame), abs=1e-6)
    assert gate["mean_chosen_chars"] == pytest.approx(chosen.mean(), abs=1e-5)
    assert gate["cohens_d"] == pytest.approx((chosen.mean() - rejected.mean()) / pooled, abs=1e-5)
    # The same seed gives the same subsample.
    again = lake.read_run(Table.PAIRS, "balanced")
    assert again["chosen_id"].to_pylist() == frame["chosen_id"].tolist()


@pytest.mark.integration
def test_human_pairs_with_kto_ties_run_through_the_optimize_flow_and_export(
        prefect_harness, tmp_path_factory) -> None:
    from flows.optimize_policy import OptimizePolicyParams, optimize_policy
    from rlhf_core.ingest.generator import write_synthetic
    from rlhf_core.ingest.write import read_source, write_ingest

    root = tmp_path_factory.mktemp("human-kto")
    demo = (REPO_ROOT / "configs" / "contracts" / "demo.yaml").read_text()
    contract = root / "human.yaml"
    contract.write_text(re.sub(r"^selection: .*$", "selection: {pairing: human, ties: kto, reward_threshold: 0.6, "
                               "weight: label_confidence, max_chosen_longer: 0.65, kl_beta: 0.1}", demo, flags=re.M))
    lake = Lake(root / "home")
    write_synthetic(root / "data", 400, seed=11, annotators=load_contract(contract).program)
    responses = write_ingest(lake, "h1", read_source(root / "data", run_id="h1")).gated.responses
    scores = score_table(load_contract(contract).program, responses)
    lake.write_partition(Table.SCORES, "h1", scores, scores.schema)
    # A few label ties, as annotators write them (the generator rarely draws exact ties).
    prefs = lake.read_run(Table.PREFERENCES, "h1")
    tied = np.zeros(prefs.num_rows, bool)
    tied[:4] = True
    prefs = prefs.set_column(prefs.schema.get_field_index("better"), "better",
                             pc.if_else(pa.array(tied), pa.scalar(0, pa.int8()), prefs["better"]))
    lake.write_partition(Table.PREFERENCES, "h1", prefs, prefs.schema)

    result = optimize_policy(OptimizePolicyParams(contract=str(contract), run_id="h1", lake_root=str(lake.root)))
    counts = result["pairs"]
    assert counts["labelled"] == prefs.num_rows and counts["unpaired"] >= 1 and counts["length_gate"]["passed"]
    stored = json.loads((Path(lake.root) / "artifacts" / "h1" / "pairs.json").read_bytes())
    assert stored["policy"]["pairing"] == "human" and stored["policy"]["ties"] == "kto"
    pairs = lake.read_run(Table.PAIRS, "h1")
    assert set(pairs["strategy"].to_pylist()) == {"human"}
    assert set(pairs["contract_hash"].to_pylist()) == {load_contract(contract).hash}
    vetoed = set(pc.filter(scores["response_id"], scores["veto"]).to_pylist())
    paired = pairs.filter(pc.equal(pairs["kind"], "pair"))
    assert vetoed.isdisjoint(paired["chosen_id"].to_pylist())

    datasets = pytest.importorskip("datasets")
    out = root / "out"
    export_pairs("h1", out / "kto.jsonl", lake, format="kto")
    export_pairs("h1", out / "trl.parquet", lake, format="trl")
    kto = datasets.load_dataset("json", data_files=str(out / "kto.jsonl"), split="train",
                                cache_dir=str(root / "cache"))
    trl = datasets.load_dataset("parquet", data_files=str(out / "trl.parquet"), split="train",
                                cache_dir=str(root / "cache"))
    assert kto.column_names == ["prompt", "completion", "label"]
    assert kto.features["label"] == datasets.Value("bool")
    unpaired = pairs.filter(pc.equal(pairs["kind"], "unpaired")).to_pylist()
    tied_texts = {r["chosen"] for r in unpaired} | {r["rejected"] for r in unpaired}
    assert tied_texts & set(kto["completion"])  # tied responses became unpaired KTO examples
    assert len(trl) == counts["pairs"] and "unpaired" not in set(trl["kind"])  # never a DPO pair
    assert trl.features["weight"] == datasets.Value("float32") and min(trl["weight"]) >= 0.5
