"""Task ``score-remote``: the score column lands in ``responses``, quarantine in the lake."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from rlhf_core.errors import CircuitOpenError
from rlhf_core.lake.store import Lake
from rlhf_core.remote import BreakerPolicy, EndpointConfig, RetryPolicy
from tasks.remote import score_remote
from tests.remote.server import ServerHandle, true_score

pytestmark = pytest.mark.integration

SCHEMA = pa.schema([
    pa.field("response_id", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("response", pa.string(), nullable=False),
    pa.field("helpfulness", pa.float32()),
])


def _responses(n: int) -> pa.Table:
    prompts = [("@nan " if i == 3 else "") + f"q{i}" for i in range(n)]
    return pa.table({"response_id": [f"id{i}" for i in range(n)], "prompt": prompts,
                     "response": [f"a{i}" for i in range(n)],
                     "helpfulness": pa.array([float(i % 5) for i in range(n)], pa.float32())},
                    schema=SCHEMA)


def test_score_remote_adds_the_column_and_publishes_quarantine(server: ServerHandle, wizard_home: Path) -> None:
    lake = Lake(str(wizard_home))
    source = _responses(60)
    for number, offset in enumerate((0, 25, 50)):  # three parts, as ingest writes shards
        lake.write_part("responses", "run-7", source.slice(offset, 25), SCHEMA, part=number)
    before = lake.part_paths("responses", "run-7")
    endpoint = EndpointConfig(url=server.url, kind="vllm_score", batch_size=10, score_column="rm_helpful",
                              retry=RetryPolicy(backoff_base_s=0.005, backoff_max_s=0.01))
    result = score_remote.fn("run-7", endpoint.model_dump(), str(wizard_home))
    assert result["score_column"] == "rm_helpful"
    assert result["response_paths"] == before == lake.part_paths("responses", "run-7")
    assert (result["rows_scored"], result["rows_quarantined"]) == (50, 10)
    stored = lake.read_table("responses", run_id="run-7").sort_by("response_id")
    by_id = dict(zip(stored["response_id"].to_pylist(), stored["rm_helpful"].to_pylist(), strict=True))
    for rid, prompt, response in zip(source["response_id"].to_pylist(), source["prompt"].to_pylist(),
                                     source["response"].to_pylist(), strict=True):
        index = int(rid[2:])
        assert by_id[rid] is None if index < 10 else by_id[rid] == true_score(prompt, response)
    assert stored.column("helpfulness").type == pa.float32()  # other columns untouched
    quarantine = lake.read_table("score_quarantine", run_id="run-7")
    assert sorted(quarantine["row_id"].to_pylist()) == sorted(f"id{i}" for i in range(10))
    assert all("non-finite score" in reason for reason in quarantine["reason"].to_pylist())
    # Re-running is idempotent: the column is replaced, only the quarantined batch is re-sent.
    server.reset()
    again = score_remote.fn("run-7", endpoint, str(wizard_home))
    assert again["cache_hits"] == 50 and server.stats()["requests"] == 1
    assert lake.read_table("responses", run_id="run-7").column_names.count("rm_helpful") == 1


def test_score_remote_fails_with_one_clear_line_under_an_outage(server: ServerHandle, wizard_home: Path) -> None:
    lake = Lake(str(wizard_home))
    lake.write_partition("responses", "run-8", _responses(40), SCHEMA)
    server.faults(outage=True)
    endpoint = EndpointConfig(url=server.url, batch_size=10, breaker=BreakerPolicy(failure_threshold=3),
                              retry=RetryPolicy(backoff_base_s=0.005, backoff_max_s=0.01))
    with pytest.raises(CircuitOpenError, match=r"run run-8: 40 of 40 rows unscored.*circuit open"):
        score_remote.fn("run-8", endpoint, str(wizard_home))
    assert "rm_score" not in lake.read_table("responses", run_id="run-8").column_names
