"""Run-wide normalisations scored in shards equal the run scored as one table.

The tasks of ``score-responses`` are run in order as the flow runs them (plan shards ->
``compute-run-stats`` once -> ``score-shard`` per shard with the statistics' path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlhf_core.contract import load_contract
from rlhf_core.errors import ContractError
from rlhf_core.scoring import score_table
from tasks.scoring import compute_run_stats, plan_score_shards, read_run_stats, score_shard

CONTRACT = """\
contract: run-norm
version: 1.0.0
inputs:
  helpfulness: {dtype: float, range: [0, 4]}
  verbosity:   {dtype: float, range: [0, 4]}
  response:    {dtype: str}
stakeholders:
  - name: users
    weight: 2
    utility: 0.5 * zscore(helpfulness IN run) + rank(helpfulness - verbosity IN run)
  - name: editors
    weight: 1
    utility: minmax(len(response) IN run) + zscore(verbosity IN prompt)
aggregation: {rule: weighted_sum}
clauses: |
  top_half: INVARIANT rank(helpfulness IN run) >= 0.5 PENALTY 0.1
  has_good: EXISTS r IN prompt: r.helpfulness >= 1
"""


def _write_parts(root: Path, n: int = 900, parts: int = 3) -> tuple[list[str], pa.Table]:
    rng = np.random.default_rng(11)
    prompts = np.sort(rng.integers(0, n // 4, n))
    table = pa.table({
        "prompt_id": [f"p{p:05d}" for p in prompts],
        "response_id": [f"r{i:05d}" for i in range(n)],
        "helpfulness": (rng.integers(0, 33, n) / 8).astype(np.float32),  # many ties
        "verbosity": rng.uniform(0, 4, n).astype(np.float32),
        "response": ["x" * int(k) for k in rng.integers(0, 300, n)],
    })
    paths = []
    cuts = np.searchsorted(prompts, np.linspace(0, prompts[-1], parts + 1)[1:-1])
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, n], strict=True)):
        path = root / f"part-{i}.parquet"
        pq.write_table(table.slice(a, b - a), path, row_group_size=100)
        paths.append(str(path))
    return paths, table


def _by_response(table: pa.Table) -> pa.Table:
    return table.sort_by("response_id")


def test_sharded_run_equals_the_single_table(tmp_path: Path) -> None:
    contract_path = tmp_path / "run-norm.yaml"
    contract_path.write_text(CONTRACT)
    contract = load_contract(contract_path)
    paths, table = _write_parts(tmp_path)
    lake = str(tmp_path / "lake")
    shards = plan_score_shards.fn(paths, "prompt_id", 200, True)
    assert len(shards) > 2
    stats = compute_run_stats.fn(str(contract_path), contract.hash, shards, "run-1", lake)
    assert stats is not None and "run-stats-" in stats
    loaded = read_run_stats(lake, stats, contract.hash)
    assert set(loaded.stats) == {"helpfulness", "helpfulness - verbosity", "len(response)"}
    staged = [score_shard.fn(str(contract_path), contract.hash, shard, "run-1", lake,
                             run_stats=stats)["path"] for shard in shards]
    sharded = _by_response(pa.concat_tables([pq.read_table(p) for p in staged]))
    single = _by_response(score_table(contract.program, table,
                                      id_columns=["prompt_id", "response_id"]))
    for name in single.column_names:
        got = sharded.column(name).to_numpy(zero_copy_only=False)
        want = single.column(name).to_numpy(zero_copy_only=False)
        assert np.array_equal(got, want), name
    # one shard on its own statistics would differ: a shard is not the run
    alone = score_table(contract.program, pq.read_table(paths[0]),
                        id_columns=["prompt_id", "response_id"])
    mine = sharded.filter(pa.compute.is_in(sharded.column("response_id"),
                                           alone.column("response_id")))
    assert not np.array_equal(_by_response(alone).column("u_users").to_numpy(),
                              mine.column("u_users").to_numpy())


def test_shards_refuse_to_score_run_normalisations_without_run_statistics(tmp_path: Path) -> None:
    contract_path = tmp_path / "run-norm.yaml"
    contract_path.write_text(CONTRACT)
    contract = load_contract(contract_path)
    paths, _ = _write_parts(tmp_path)
    [shard, *_] = plan_score_shards.fn(paths, "prompt_id", 10_000, True)
    with pytest.raises(ContractError, match="needs the run statistics of compute-run-stats"):
        score_shard.fn(str(contract_path), contract.hash, shard, "run-2", str(tmp_path / "lake"))


def test_pre_pass_reads_nothing_for_contracts_without_run_normalisations(tmp_path: Path) -> None:
    contract_path = Path(__file__).resolve().parents[2] / "configs" / "contracts" / "demo.yaml"
    contract = load_contract(contract_path)
    from rlhf_core.scoring.shards import Piece, Shard

    # no shard is read: its file need not even exist
    ghost = Shard(0, (Piece(str(tmp_path / "no-such-file.parquet"), 0, 10, None, None),))
    assert compute_run_stats.fn(str(contract_path), contract.hash, [ghost], "run-3",
                                str(tmp_path / "lake")) is None


@pytest.mark.integration
def test_the_score_responses_flow_passes_run_statistics_to_every_shard(
        prefect_harness, tmp_path: Path) -> None:
    from flows.score_responses import ScoreResponsesParams, score_responses_with
    from ops.runtime import DaskConfig
    from rlhf_core.ingest.generator import generate_table

    contract = tmp_path / "run-norm.yaml"
    contract.write_text(CONTRACT, encoding="utf-8")
    loaded = load_contract(contract)
    table = generate_table(3_000, seed=9)  # 4 candidates a prompt: 1,000-row slices keep prompts whole
    paths = []
    for k in range(3):
        paths.append(str(tmp_path / f"part-{k}.parquet"))
        pq.write_table(table.slice(1_000 * k, 1_000), paths[-1])
    result = score_responses_with(ScoreResponsesParams(
        contract=str(contract), contract_hash=loaded.hash, inputs=paths, run_id="norm",
        lake_root=str(tmp_path / "lake"), shard_rows=700), DaskConfig(n_workers=1))
    assert result["shards"] >= 3
    sharded = pa.concat_tables(pq.read_table(p) for p in result["paths"]).sort_by("response_id")
    whole = score_table(loaded.program, table).sort_by("response_id")
    np.testing.assert_array_equal(sharded.column("reward").to_numpy(), whole.column("reward").to_numpy())
