"""The deployments against a real ``prefect server start``: deploy, serve, and three kinds of trigger.

One server on 127.0.0.1 with its own PREFECT_HOME for the module. ``rlhf-wizard deploy`` registers
the file's deployments (process pool created, cron schedules); then ``rlhf-wizard serve`` serves
them and ``validate-contract`` is started (1) through the REST call the UI's Run button makes,
(2) with ``prefect deployment run``, (3) by an interval schedule set with ``serve --interval``.
Each run writes audit entries into its own lake root, which the test reads back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlhf_core.contract import load_contract
from rlhf_core.security.audit import AuditLog
from tests.deployments.processes import (
    QUIET_ENV,
    Service,
    api_call,
    prefect_server,
    processes_with_env,
    wait_deployment,
    wait_flow_run,
)

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONTRACT = REPO_ROOT / "configs" / "contracts" / "demo.yaml"
VALIDATE = "validate-contract/on-demand"
SCHEDULE_EVERY_S = 15
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _client_env(base: dict[str, str], api: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("PREFECT_")}
    return {**env, **QUIET_ENV, "PREFECT_API_URL": api, "PREFECT_HOME": str(home),
            "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_LOGGING_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A real Prefect server (own home, analytics off, scheduler looping every 2 s)."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    with prefect_server(home, home / "server.log",
                        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2") as running:
        yield running


def _validated_hashes(lake: Path) -> list[str]:
    return [e.subject for e in AuditLog(lake).entries() if e.kind == "contract_validated"]


def test_deploy_registers_every_deployment(server, tmp_path: Path) -> None:
    api, _ = server
    env = _client_env(dict(os.environ), api, tmp_path / "client-home")
    env["RLHF_WIZARD_HOME"] = str(tmp_path / "lake-deploy")
    done = subprocess.run([str(BIN / "rlhf-wizard"), "deploy", "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    names = {d["name"]: d for d in result["deployments"]}
    assert {VALIDATE, "contract-pipeline/nightly-scoring"} <= set(names)
    assert result["pools_created"] == ["rlhf-local"]
    assert len(result["incoming"]) == 1 and result["incoming"][0].endswith("/incoming")
    assert all(d["work_pool"] == "rlhf-local" for d in names.values())
    assert names["contract-pipeline/nightly-scoring"]["schedules"][0]["cron"] == "0 2 * * *"
    deployment = api_call("GET", f"{api}/deployments/name/{VALIDATE}").json()
    # The lake-root template resolved to the absolute path exported by `deploy`.
    assert deployment["parameters"]["params"]["lake_root"] == str(tmp_path / "lake-deploy")
    # Input data defaults to a file in the lake's incoming folder (template inside a longer string).
    nightly = api_call("GET", f"{api}/deployments/name/contract-pipeline/nightly-scoring").json()
    assert nightly["parameters"]["params"]["data"] == str(tmp_path / "lake-deploy" / "incoming" / "helpsteer.jsonl")
    pool = api_call("GET", f"{api}/work_pools/rlhf-local").json()
    assert pool["type"] == "process"
    # Again, one deployment: the pool exists already, nothing else is touched.
    again = subprocess.run([str(BIN / "rlhf-wizard"), "deploy", "--name", VALIDATE, "--json"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert second["pools_created"] == [] and [d["name"] for d in second["deployments"]] == [VALIDATE]


def test_serve_runs_from_ui_cli_and_schedule(server, tmp_path: Path) -> None:
    api, _ = server
    started = time.monotonic()
    lakes = {kind: tmp_path / f"lake-{kind}" for kind in ("ui", "cli", "schedule")}
    env = _client_env(dict(os.environ), api, tmp_path / "client-home")
    env["RLHF_WIZARD_HOME"] = str(lakes["schedule"])
    serve = Service("rlhf-wizard serve", [str(BIN / "rlhf-wizard"), "serve", "--interval",
                                          f"{VALIDATE}={SCHEDULE_EVERY_S}"], env,
                    tmp_path / "serve.log", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        deployment = None
        while time.monotonic() < deadline:
            serve.snapshot()
            reply = api_call("GET", f"{api}/deployments/name/{VALIDATE}")
            if reply.status_code == 200 and reply.json()["schedules"] and \
                    reply.json()["schedules"][0]["schedule"].get("interval") == SCHEDULE_EVERY_S:
                deployment = reply.json()
                break
            assert serve.proc.poll() is None, serve.tail()
            time.sleep(1)
        assert deployment is not None, f"serve did not register {VALIDATE}:\n{serve.tail()}"

        # (1) The UI's Run button: create a flow run from the deployment with custom parameters.
        ui_params = {"params": {"contract": str(DEMO_CONTRACT), "dry_run": False,
                                "lake_root": str(lakes["ui"])}}
        reply = api_call("POST", f"{api}/deployments/{deployment['id']}/create_flow_run", json={
            "parameters": ui_params, "state": {"type": "SCHEDULED", "message": "Run from the Prefect UI"}})
        assert reply.status_code == 201, reply.text
        ui_run = reply.json()["id"]

        # (2) The CLI.
        cli_params = json.dumps({"contract": str(DEMO_CONTRACT), "lake_root": str(lakes["cli"])})
        done = subprocess.run([str(BIN / "prefect"), "deployment", "run", VALIDATE, "--param",
                               f"params={cli_params}"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        cli_run = UUID_RE.search(done.stdout).group(0)

        runs = {"ui": wait_flow_run(api, ui_run, 150), "cli": wait_flow_run(api, cli_run, 150)}
        serve.snapshot()

        # (3) The schedule: the scheduler's own runs, with the deployment's default parameters.
        scheduled = None
        deadline = time.monotonic() + 120
        while scheduled is None and time.monotonic() < deadline:
            serve.snapshot()
            found = api_call("POST", f"{api}/flow_runs/filter", json={
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}}).json()
            finished = [r for r in found if r["auto_scheduled"]]
            assert all(r["state"]["type"] == "COMPLETED" for r in finished), \
                f"{[r['state'] for r in finished]}\n{serve.tail()}"
            scheduled = finished[0] if finished else None
            time.sleep(1)
        assert scheduled is not None, f"no scheduled run completed:\n{serve.tail()}"
        runs["schedule"] = scheduled

        for kind, run in runs.items():
            assert run["state"]["type"] == "COMPLETED", f"{kind}: {run['state']}\n{serve.tail()}"
        assert runs["ui"]["parameters"] == ui_params
        assert runs["schedule"]["parameters"]["params"]["lake_root"] == str(lakes["schedule"])
        demo_hash = load_contract(DEMO_CONTRACT).hash
        for kind, lake in lakes.items():
            assert demo_hash in _validated_hashes(lake), f"no audit entry from the {kind} run in {lake}"
    finally:
        survivors = serve.stop()
    assert serve.seen, "serve process was never observed"
    assert not survivors, f"processes left behind by serve: {survivors}"
    # Nothing that talked to this server survives: serve, flow-run subprocesses, CLI calls.
    assert not processes_with_env("PREFECT_API_URL", api), "a client of the test server is still running"
    print(f"\nreal-server serve test: {time.monotonic() - started:.1f} s")


PIPELINE = "contract-pipeline/nightly-scoring"


def test_a_deployment_run_cancelled_through_the_api_ends_cancelled_everywhere(server, tmp_path: Path) -> None:
    """The UI's Cancel button (a CANCELLING state set through the API) on a running pipeline: the
    served run stops within seconds, Prefect shows it cancelled, the lake's run record and audit
    log say cancelled, only committed partitions are visible, and no process of the run is left."""
    from rlhf_core.ingest.generator import write_synthetic
    from rlhf_core.lake.runs import get_run
    from rlhf_core.lake.store import Lake

    api, _ = server
    lake_root = tmp_path / "lake"
    data = tmp_path / "data"
    write_synthetic(data, 60_000, seed=5)
    env = _client_env(dict(os.environ), api, tmp_path / "client-home")
    env["RLHF_WIZARD_HOME"] = str(lake_root)
    serve = Service("rlhf-wizard serve", [str(BIN / "rlhf-wizard"), "serve"], env,
                    tmp_path / "serve.log", cwd=tmp_path)
    lake = Lake(lake_root)
    try:
        deployment = wait_deployment(api, PIPELINE, serve)
        params = {"params": {"contract": str(DEMO_CONTRACT), "data": str(data), "run_id": "cancel-me",
                             "lake_root": str(lake_root), "evaluation_resamples": 20_000}}
        reply = api_call("POST", f"{api}/deployments/{deployment['id']}/create_flow_run",
                      json={"parameters": params, "state": {"type": "SCHEDULED"}})
        assert reply.status_code == 201, reply.text
        flow_run = reply.json()["id"]

        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            serve.snapshot()
            if lake.part_paths("runs", "cancel-me") and get_run(lake, "cancel-me").status == "running":
                break
            assert api_call("GET", f"{api}/flow_runs/{flow_run}").json()["state"]["type"] in \
                {"SCHEDULED", "PENDING", "RUNNING"}, serve.tail()
            time.sleep(0.3)
        else:
            raise AssertionError(f"the run never started:\n{serve.tail()}")
        time.sleep(2)
        serve.snapshot()
        run_processes = [p for p in serve.seen.values() if p.pid != serve.proc.pid]
        assert run_processes, "the served run should execute in a subprocess of serve"

        cancelled_at = time.monotonic()
        reply = api_call("POST", f"{api}/flow_runs/{flow_run}/set_state",
                      json={"state": {"type": "CANCELLING", "message": "Cancelled from the UI"}})
        assert reply.status_code in (200, 201), reply.text
        final = wait_flow_run(api, flow_run, 60)
        assert final["state"]["type"] == "CANCELLED", f"{final['state']}\n{serve.tail()}"
        took = time.monotonic() - cancelled_at
        assert took < 30, f"cancelling took {took:.1f} s"
        print(f"\ncancel through the API to CANCELLED: {took:.1f} s")

        deadline = time.monotonic() + 30
        while any(p.is_running() and p.status() != "zombie" for p in run_processes) \
                and time.monotonic() < deadline:
            time.sleep(0.3)
        assert not [p for p in run_processes if p.is_running() and p.status() != "zombie"]
        record = get_run(lake, "cancel-me")
        assert record.status == "cancelled" and "cancelled" in (record.error or ""), record
        finished = [e for e in AuditLog(lake_root).entries()
                    if e.kind == "run_finished" and e.subject == "cancel-me"]
        assert finished and finished[-1].details["status"] == "cancelled"
        for table in lake.list_tables():  # only committed partitions are visible: part files only
            for path in lake.part_paths(table, "cancel-me"):
                assert Path(path).name.startswith("part-") and Path(path).suffix == ".parquet"
    finally:
        survivors = serve.stop()
    assert not survivors, f"processes left behind by serve: {survivors}"


def test_a_ui_run_on_a_system_file_is_refused_before_reading(server, tmp_path: Path) -> None:
    """The UI's Run button on ``contract-pipeline`` with ``data`` = /etc/passwd: the run fails
    with the one-line refusal, nothing reaches the lake, and the audit log records the refusal
    (symlinks and ``..`` paths: tests/security/test_confine.py)."""
    from rlhf_core.security.confine import REFUSAL_KIND

    api, _ = server
    started = time.monotonic()
    lake_root = tmp_path / "lake"
    env = _client_env(dict(os.environ), api, tmp_path / "client-home")
    env["RLHF_WIZARD_HOME"] = str(lake_root)
    serve = Service("rlhf-wizard serve", [str(BIN / "rlhf-wizard"), "serve"], env,
                    tmp_path / "serve.log", cwd=tmp_path)
    try:
        deployment = wait_deployment(api, PIPELINE, serve)
        params = {"params": {"contract": str(REPO_ROOT / "configs/contracts/helpsteer.yaml"),
                             "data": "/etc/passwd", "adapter": "helpsteer", "run_id": "leak",
                             "lake_root": str(lake_root)}}
        created = api_call("POST", f"{api}/deployments/{deployment['id']}/create_flow_run",
                        json={"parameters": params, "state": {"type": "SCHEDULED"}})
        assert created.status_code == 201, created.text
        state = wait_flow_run(api, created.json()["id"], 120)["state"]
        assert state["type"] == "FAILED", f"{state}\n{serve.tail()}"
        assert "ConfinementError" in state["message"] and "parameter 'data'" in state["message"]
    finally:
        survivors = serve.stop()
    assert not survivors, f"processes left behind by serve: {survivors}"
    assert not (lake_root / "lake").exists(), "a refused run wrote to the lake"
    (refused,) = [e for e in AuditLog(lake_root).entries() if e.kind == REFUSAL_KIND]
    assert refused.subject == "contract-pipeline" and refused.details["run_id"] == "leak"
    assert refused.details["resolved"] == "/etc/passwd"
    print(f"\nUI-style refusal: {time.monotonic() - started:.1f} s")
