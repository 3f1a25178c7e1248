"""Every example contract, end to end: ingest → score under the contract → Pareto + DPO pairs.

DPO pairs must load as a TRL-style dataset: three string columns (prompt, chosen, rejected), no
nulls, chosen ≠ rejected; prompts failing the contract's FORALL / EXISTS clauses are excluded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlhf_core.contract.build import load_contract
from rlhf_core.contract.hashing import contract_hash
from rlhf_core.ingest.generator import generate_table
from rlhf_core.optimize import compute_pareto, select_pairs_table
from rlhf_core.scoring.score import score_table
from tests.conftest import REPO_ROOT
from tests.preference.test_real_data import load

pytestmark = pytest.mark.integration

CONTRACTS = {
    "pku_saferlhf": "pku_saferlhf",
    "helpsteer": "helpsteer",
    "helpsteer_nemotron": "helpsteer",
    "ultrafeedback": "ultrafeedback",
    "demo": None,  # the project's synthetic generator
}


@pytest.mark.parametrize("name", list(CONTRACTS))
def test_contract_gives_trl_pairs_and_a_pareto_summary(shared_data: Path, tmp_path: Path, name: str) -> None:
    loaded = load_contract(REPO_ROOT / "configs" / "contracts" / f"{name}.yaml")
    program = loaded.program
    source = CONTRACTS[name]
    responses = load(shared_data, source)[0] if source else generate_table(400, seed=0)
    scores = score_table(program, responses)
    quantified = [f"v_{c.label}" for c in program.clauses if c.kind in ("FORALL", "EXISTS")]
    sel = loaded.spec.selection
    pairs, counts = select_pairs_table(scores, responses, sel.pairing, float(sel.min_margin), sel.seed,
                                       prompt_clauses=quantified, contract_hash=contract_hash(loaded),
                                       run_id="test-run")
    path = tmp_path / "pairs.parquet"
    pq.write_table(pairs, path)
    dpo = pq.read_table(path, columns=["prompt", "chosen", "rejected"])
    assert dpo.num_rows == counts["pairs"] > 0
    assert dpo.schema.types == [pa.string()] * 3
    assert all(dpo.column(c).null_count == 0 for c in dpo.column_names)
    assert all(a != b for a, b in zip(dpo.column("chosen").to_pylist(), dpo.column("rejected").to_pylist(), strict=True))
    vetoed = set(np.asarray(scores.column("response_id"))[np.asarray(scores.column("veto"))].tolist())
    assert not vetoed & set(pairs.column("chosen_id").to_pylist())
    if quantified:
        failing = {p for p, *v in zip(scores.column("prompt_id").to_pylist(),
                                      *(scores.column(q).to_pylist() for q in quantified), strict=True) if any(v)}
        assert counts["excluded_clause"] == len(failing)
        assert not failing & set(pairs.column("prompt_id").to_pylist())
    names = [s.name for s in program.stakeholders]
    _, summary = compute_pareto(scores, names, contract_weights=[s.weight for s in program.stakeholders],
                                min_weights=200, prompt_clauses=quantified)
    assert summary["n_front"] >= 1 and all(v >= -1e-5 for v in summary["regret"].values())
