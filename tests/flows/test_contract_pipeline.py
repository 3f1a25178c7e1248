"""The main job end to end: Prefect harness + local Dask, and a real scheduler with 2 workers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
from flows.validate_contract import ValidateContractParams, validate_contract
from ops.config import PipelineConfig
from rlhf_core.errors import SignatureError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.runs import get_run
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.audit_verify import verify_audit
from tests.flows.conftest import DEMO_CONTRACT

pytestmark = pytest.mark.integration


def _params(lake: Path, data: Path, run_id: str, **dask: object) -> ContractPipelineParams:
    config = PipelineConfig.model_validate({"scoring": {"shard_rows": 1_000}, "dask": dask})
    return ContractPipelineParams(contract=str(DEMO_CONTRACT), data=str(data), run_id=run_id,
                                  lake_root=str(lake), config=config)


def _scores(lake: Path, run_id: str):
    table = Lake(lake).read_table("scores", run_id=run_id)
    return table.drop_columns([c for c in table.column_names if c == "run_id"]).sort_by("response_id")


@pytest.fixture(scope="module")
def local_run(prefect_harness: str, demo_data: Path, tmp_path_factory: pytest.TempPathFactory):
    lake = tmp_path_factory.mktemp("lake")
    result = contract_pipeline(_params(lake, demo_data, "local-1", n_workers=2))
    return lake, result


def test_pipeline_scores_every_row_and_conserves_rows(local_run) -> None:
    lake, result = local_run
    assert result["ingest"]["rows_in"] == 3_000
    assert result["ingest"]["accepted"] + result["ingest"]["quarantined"] == 3_000
    assert result["scores"]["shards"] == 3
    scores = _scores(lake, "local-1")
    assert scores.num_rows == result["ingest"]["accepted"]
    responses = Lake(lake).read_table("responses", run_id="local-1")
    assert set(scores.column("response_id").to_pylist()) == set(responses.column("response_id").to_pylist())


def test_pipeline_differential_check_covers_the_whole_run(local_run) -> None:
    _, result = local_run
    diff = result["differential"]
    assert diff["ok"] and diff["rows"] == diff["sql_rows"] == 3_000
    assert "reward" in diff["columns"] and "veto" in diff["columns"]


def test_pipeline_records_run_and_audit_trail(local_run) -> None:
    lake, result = local_run
    record = get_run(Lake(lake), "local-1")
    assert record.status == "completed"
    assert set(Lake(lake).list_tables()) <= {t.value for t in Table}  # every table catalogued
    assert record.row_counts["scored"] == 3_000
    report = verify_audit(Lake(lake))
    assert report.ok, report
    kinds = {e.kind for e in AuditLog(Lake(lake)).entries()}
    assert {"run_started", "contract_validated", "contract_approved", "contract_used",
            "run_finished"} <= kinds
    assert "## Clauses" in result["summary"] and "has_safe" in result["summary"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_real_dask_scheduler_with_two_workers_gives_identical_scores(local_run, demo_data, tmp_path) -> None:
    lake, _ = local_run
    port = _free_port()
    dask = str(Path(sys.executable).with_name("dask"))
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        address = f"tcp://127.0.0.1:{port}"
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            workers = client.scheduler_info()["workers"]
            assert len(workers) == 2
            result = contract_pipeline(_params(lake, demo_data, "remote-1", address=address))
            assert result["scores"]["shards"] == 3
            # the scheduler really ran the shard tasks on its worker processes
            pids = set(client.run(lambda: __import__("os").getpid()).values())
            assert len(pids) == 2
        assert _scores(lake, "remote-1").equals(_scores(lake, "local-1"))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def test_unapproved_contract_is_refused_unless_dry_run(prefect_harness, tmp_path) -> None:
    contract = tmp_path / "demo.yaml"
    shutil.copy(DEMO_CONTRACT, contract)  # no signature envelope beside it
    with pytest.raises(SignatureError, match="not approved"):
        validate_contract(ValidateContractParams(contract=str(contract), lake_root=str(tmp_path / "lake")))
    facts = validate_contract(ValidateContractParams(contract=str(contract), dry_run=True,
                                                     lake_root=str(tmp_path / "lake")))
    assert facts["approved"] is False and facts["hash"].startswith("sha256:")


def test_pipeline_on_real_ultrafeedback_quarantines_and_conserves(prefect_harness, shared_data, tmp_path) -> None:
    contract = DEMO_CONTRACT.with_name("ultrafeedback.yaml")
    params = ContractPipelineParams(
        contract=str(contract), data=str(shared_data / "preferences" / "ultrafeedback_binarized_train1000.jsonl"),
        adapter="ultrafeedback", run_id="uf-1", lake_root=str(tmp_path / "lake"),
        config=PipelineConfig.model_validate({"dask": {"n_workers": 1}}),
    )
    result = contract_pipeline(params)
    ingest = result["ingest"]
    assert ingest["rows_in"] == ingest["accepted"] + ingest["quarantined"]
    assert ingest["quarantine_reasons"].get("identical_responses") == 4
    quarantine = Lake(tmp_path / "lake").read_table("quarantine", run_id="uf-1")
    assert quarantine.num_rows == ingest["quarantined_total"] > 0
    assert set(quarantine.column("reason").to_pylist()) and all(quarantine.column("reason").to_pylist())
    assert result["scores"]["rows"] == ingest["accepted"]
    assert result["differential"]["ok"]
