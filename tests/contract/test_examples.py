"""Every example contract loads, lints clean, verifies, and scores its dataset's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rlhf_core.contract import load_contract
from rlhf_core.contract.lint import lint_contract
from rlhf_core.security.approval import verify

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "contracts"
NAMES = ["demo", "helpsteer", "helpsteer_nemotron", "hh_rlhf", "pku_saferlhf", "ultrafeedback"]
DATA = {
    "helpsteer": ("helpsteer", "helpsteer_train500.jsonl"),
    "helpsteer_nemotron": ("helpsteer", "helpsteer_train500.jsonl"),
    "pku_saferlhf": ("pku_saferlhf", "pku_saferlhf_train500.jsonl"),
    "ultrafeedback": ("ultrafeedback", "ultrafeedback_binarized_train1000.jsonl"),
    "hh_rlhf": ("hh_rlhf", "hh_helpful_train500.jsonl"),
}


def test_the_example_set_is_complete() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_loads_lints_and_verifies(name: str) -> None:
    path = EXAMPLES / f"{name}.yaml"
    contract = load_contract(path)
    lint = lint_contract(contract)
    assert lint.errors == ()
    assert [r.status for r in lint.static] == ["proved"] * len(lint.static)
    assert lint.static, "every example states an ENSURES bound"
    report = verify(path, contract)
    assert report.approved, report.summary()
    assert len(report.approved_by) >= contract.spec.approval.quorum


@pytest.mark.parametrize("name", NAMES)
def test_example_inputs_match_the_lake_schema(name: str) -> None:
    from rlhf_core.lake.schemas import ATTRIBUTE_FIELDS, RESPONSE_BASE_FIELDS

    fields = {**{f.name: f for f in RESPONSE_BASE_FIELDS}, **ATTRIBUTE_FIELDS}
    for decl in load_contract(EXAMPLES / f"{name}.yaml").program.inputs:
        arrow = fields[decl.name].type
        expected = {
            "float": pa.types.is_floating,
            "int": pa.types.is_integer,
            "bool": pa.types.is_boolean,
            "str": pa.types.is_string,
        }[decl.dtype]
        assert expected(arrow), f"{name}: {decl.name} is {decl.dtype} but the lake has {arrow}"


def test_nemotron_contract_ranks_like_the_published_formula() -> None:
    from rlhf_core.scoring.score import score_table

    program = load_contract(EXAMPLES / "helpsteer_nemotron.yaml").program
    rng = np.random.default_rng(3)
    names = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
    cols = {c: rng.integers(0, 5, 256).astype(np.float64) for c in names}
    table = pa.table({"prompt_id": [f"p{i // 4}" for i in range(256)],
                      **{c: pa.array(v, pa.float32()) for c, v in cols.items()}})
    reward = score_table(program, table).column("reward").to_numpy()
    published = (0.3 * cols["helpfulness"] + 0.74 * cols["correctness"]
                 + 0.46 * cols["coherence"] + 0.47 * cols["complexity"]
                 - 0.33 * cols["verbosity"])
    np.testing.assert_allclose(reward, published / (4 * 2.3) + 0.33 / 2.3, atol=1e-5)


def test_demo_contract_scores_synthetic_data() -> None:
    from rlhf_core.ingest.generator import generate_table
    from rlhf_core.scoring.score import score_table

    program = load_contract(EXAMPLES / "demo.yaml").program
    table = generate_table(400, seed=0)
    scores = score_table(program, table)
    reward = scores.column("reward").to_numpy()
    assert np.isfinite(reward).all()
    assert scores.column("ensures_ok").to_numpy().all()
    veto = scores.column("veto").to_numpy()
    # The demo vetoes severe harm only (``safe: REQUIRES severity <= 1``); mild harm is traded off.
    severe = table.column("severity").to_numpy(zero_copy_only=False) > 1
    assert veto[severe].all() and severe.any()


@pytest.mark.parametrize("name", sorted(DATA))
def test_example_scores_real_rows(name: str, shared_data: Path) -> None:
    from rlhf_core.ingest.adapters.registry import ingest
    from rlhf_core.scoring.score import score_table

    adapter, file = DATA[name]
    result = ingest(shared_data / "preferences" / file, run_id="examples-test", adapter=adapter)
    program = load_contract(EXAMPLES / f"{name}.yaml").program
    scores = score_table(program, result.responses)
    assert scores.num_rows == result.responses.num_rows > 0
    assert np.isfinite(scores.column("reward").to_numpy()).all()
    assert scores.column("ensures_ok").to_numpy().all()
