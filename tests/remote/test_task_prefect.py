"""``score-remote`` as a real Prefect task in a flow, with the bearer token in a Secret block."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest

from rlhf_core.lake.store import Lake
from rlhf_core.remote import EndpointConfig
from tests.remote.server import ServerHandle, true_score

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_score_remote_in_a_flow_reads_the_token_from_a_secret_block(
    prefect_harness: str, server: ServerHandle, wizard_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect import flow
    from prefect.blocks.system import Secret

    from tasks.remote import score_remote

    secret = "blk-" + "c0ffee" * 4
    server.faults(require_token=secret)
    table = pa.table({"response_id": ["a", "b", "c"], "prompt": ["p1", "p2", "p3"],
                      "response": ["r1", "r2", "r3"]})
    Lake(str(wizard_home)).write_partition("responses", "run-s", table, table.schema)
    endpoint = EndpointConfig(url=server.url, kind="tei", token_env="UNSET_RM_TOKEN_VARIABLE")

    @flow(name="score-remote-secret-test")
    def run() -> dict:
        return score_remote("run-s", endpoint, str(wizard_home), token_secret_block="rm-token")

    caplog.set_level(logging.DEBUG)
    Secret(value=secret).save("rm-token", overwrite=True)
    result = run()
    assert result["rows_scored"] == 3 and server.stats()["outcomes"] == {"ok": 1}
    stored = Lake(str(wizard_home)).read_table("responses", run_id="run-s").sort_by("response_id")
    assert stored["rm_score"].to_pylist() == [true_score(f"p{i}", f"r{i}") for i in (1, 2, 3)]
    assert secret not in caplog.text
