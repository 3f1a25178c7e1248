"""A Prefect server that requires an API auth string: our commands work with the credential and
say so in one line without it.

Prefect's open-source server checks HTTP basic credentials on every route but its health probes
when started with ``PREFECT_SERVER_API_AUTH_STRING``; clients send ``PREFECT_API_AUTH_STRING``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rlhf_core.ingest.generator import write_synthetic
from rlhf_core.lake.runs import get_run
from rlhf_core.lake.store import Lake
from tests.deployments.processes import QUIET_ENV, prefect_server

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "operator:correct horse battery staple"


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("locked-server")
    with prefect_server(home, home / "server.log", PREFECT_SERVER_API_AUTH_STRING=SECRET) as (api, _):
        yield api


def _env(api: str, home: Path, credential: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(QUIET_ENV, PREFECT_API_URL=api, PREFECT_HOME=str(home / "client"),
               RLHF_WIZARD_HOME=str(home / "lake"))
    if credential is not None:
        env["PREFECT_API_AUTH_STRING"] = credential
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "rlhf-wizard"), *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def _one_line_refusal(done: subprocess.CompletedProcess, api: str) -> str:
    assert done.returncode != 0
    text = (done.stdout + done.stderr).strip()
    assert "Traceback" not in text, text[-2000:]
    lines = [line for line in text.splitlines() if "refused the request" in line]
    assert lines, text[-2000:]
    assert api in lines[0] and "PREFECT_API_AUTH_STRING" in text
    return lines[0]


def test_commands_need_the_credential_and_work_with_it(locked_server: str, tmp_path: Path) -> None:
    api = locked_server
    assert httpx.post(f"{api}/flows/filter", json={}).status_code == 401  # really enforced

    # doctor: the check fails with the fix without the credential, passes with it
    done = _cli(_env(api, tmp_path, None), "doctor", "--json")
    check = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "prefect api")
    assert check["ok"] is False and "refused the request" in check["detail"]
    assert "PREFECT_API_AUTH_STRING" in check["fix"]
    wrong = _cli(_env(api, tmp_path, "operator:wrong"), "doctor", "--json")
    check = next(c for c in json.loads(wrong.stdout)["checks"] if c["name"] == "prefect api")
    assert check["ok"] is False and "was refused" in check["detail"]
    done = _cli(_env(api, tmp_path, SECRET), "doctor", "--json")
    check = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "prefect api")
    assert check["ok"] is True, check

    # run: refused before anything is written; completes with the credential
    data = tmp_path / "data"
    write_synthetic(data, 300, seed=2)
    run = ("run", "--contract", "configs/contracts/demo.yaml", "--data", str(data), "--run-id", "auth-1")
    _one_line_refusal(_cli(_env(api, tmp_path, None), *run), api)
    assert not (tmp_path / "lake" / "lake").exists()
    done = _cli(_env(api, tmp_path, SECRET), *run)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert get_run(Lake(tmp_path / "lake"), "auth-1").status == "completed"
    auth = {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
    runs = httpx.post(f"{api}/flow_runs/filter", json={"flows": {"name": {"any_": ["contract-pipeline"]}}},
                      headers=auth).json()
    assert [r["state_type"] for r in runs] == ["COMPLETED"]

    # deploy: one line without the credential; registers with it
    _one_line_refusal(_cli(_env(api, tmp_path, None), "deploy", "--name", "validate-contract/on-demand"), api)
    done = _cli(_env(api, tmp_path, SECRET), "deploy", "--name", "validate-contract/on-demand")
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    reply = httpx.get(f"{api}/deployments/name/validate-contract/on-demand", headers=auth)
    assert reply.status_code == 200, reply.text
