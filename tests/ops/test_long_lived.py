"""A long-lived local Prefect server and a long-lived Dask cluster that runs keep reusing.

`rlhf-wizard server start` runs one Prefect server for the home; three runs in a row against one
running Dask scheduler all report to it, so every task run the workers executed is in Prefect and
no worker ever talks to a server that went away (what a per-run temporary server caused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from rlhf_core.ingest.generator import write_synthetic
from tests.deployments.processes import QUIET_ENV, Service, free_port

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("rlhf-wizard"))
DASK = str(Path(sys.executable).with_name("dask"))
LOST_EVENTS = ("Unable to connect", "event data may be lost", "ConnectError")


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _filter(api: str, kind: str, body: dict) -> list[dict]:
    response = httpx.post(f"{api}/{kind}/filter", json={"limit": 200, **body}, timeout=30)
    response.raise_for_status()
    return response.json()


def _flow_runs_of(api: str, flow_name: str, run_id: str) -> list[dict]:
    runs = _filter(api, "flow_runs", {"flows": {"name": {"any_": [flow_name]}}})
    return [r for r in runs if r["parameters"].get("params", {}).get("run_id") == run_id]


def test_three_runs_on_one_cluster_report_every_task_to_the_long_lived_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(QUIET_ENV, RLHF_WIZARD_HOME=str(home))
    data = tmp_path / "data"
    write_synthetic(data, 600, seed=3)
    preset = tmp_path / "preset.yaml"
    preset.write_text("scoring:\n  shard_rows: 200\n")  # three shards per run

    port = free_port()
    started = _cli(env, "server", "start", "--port", str(port))
    assert started.returncode == 0, started.stdout + started.stderr
    api = f"http://127.0.0.1:{port}/api"
    state = json.loads(_cli(env, "server", "status", "--json").stdout)
    assert state == {"running": True, "url": api, "pid": state["pid"], "log": state["log"]}
    server_pid = state["pid"]

    scheduler_port = free_port()
    address = f"tcp://127.0.0.1:{scheduler_port}"
    cluster_env = {**env, "PREFECT_API_URL": api}  # the cluster's own environment, like an operator's
    scheduler = Service("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port",
                                      str(scheduler_port), "--no-dashboard"], cluster_env,
                        tmp_path / "scheduler.log")
    workers = Service("workers", [DASK, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                  "--no-dashboard"], {k: v for k, v in env.items()},
                      tmp_path / "workers.log")
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        for i in range(3):
            run_id = f"wired-{i}"
            done = _cli(env, "run", "--contract", "configs/contracts/demo.yaml", "--data", str(data),
                        "--run-id", run_id, "--dask-address", address, "--config", str(preset),
                        "--json")
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            result = json.loads(done.stdout[done.stdout.index("{"):])
            assert result["scores"]["shards"] == 3

            (pipeline,) = _flow_runs_of(api, "contract-pipeline", run_id)
            assert pipeline["state_type"] == "COMPLETED"
            (scoring,) = _flow_runs_of(api, "score-responses", run_id)
            assert scoring["state_type"] == "COMPLETED"
            tasks = _filter(api, "task_runs", {"flow_runs": {"id": {"any_": [scoring["id"]]}}})
            shards = [t for t in tasks if t["name"].startswith("score-shard")]
            assert len(shards) == 3, [t["name"] for t in tasks]
            assert all(t["state_type"] == "COMPLETED" for t in shards)
        time.sleep(3)  # a worker that lost its API logs within its next event flush
        worker_log = workers.log.read_text(errors="replace")
        assert not [line for line in worker_log.splitlines() if any(s in line for s in LOST_EVENTS)]
    finally:
        workers.stop()
        scheduler.stop()
        stopped = _cli(env, "server", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE
    assert _cli(env, "server", "status").returncode == 1
    assert not (home / "prefect-server" / "server.json").exists()
