"""Real HelpSteer responses (long, multi-line, non-ASCII text) through the client and the server."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from rlhf_core.remote import EndpointConfig, RetryPolicy, score_table_remote
from tests.remote.server import ServerHandle, true_score

pytestmark = pytest.mark.integration


def test_helpsteer_rows_score_exactly_and_rescore_from_cache(
    server: ServerHandle, shared_data: Path, wizard_home: Path
) -> None:
    lines = (shared_data / "preferences" / "helpsteer_train500.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in lines.splitlines() if line.strip()]
    table = pa.table({"prompt": [r["prompt"] for r in records],
                      "response": [r["response"] for r in records]})
    server.faults(p_503=0.2, seed=11)
    config = EndpointConfig(url=server.url, kind="tei", batch_size=16,
                            retry=RetryPolicy(max_attempts=10, backoff_base_s=0.005, backoff_max_s=0.02))
    scores, quarantine, stats = score_table_remote(table, config, run_id="helpsteer")
    expected = [true_score(r["prompt"], r["response"]) for r in records]
    assert scores["rm_score"].to_pylist() == expected and quarantine.num_rows == 0
    assert stats.rows == len(records) == 500 and stats.retries > 0
    server.reset()
    _, _, again = score_table_remote(table, config, run_id="helpsteer-2")
    assert again.cache_hits == 500 and server.stats()["requests"] == 0
