"""Access control against a real ``prefect server start``: a UI-style trigger of ``contract-pipeline``
needs a run token, and the CLI's roles hold (author may not export; auditor reads the audit log only).

One lake with an installed policy (admin, operator, author, auditor). ``rlhf-wizard serve`` serves a
``contract-pipeline`` deployment; runs are created through the REST call the UI's Run button makes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import AuditLog
from tests.deployments.processes import (
    QUIET_ENV,
    Service,
    api_call,
    prefect_server,
    wait_deployment,
    wait_flow_run,
)
from tests.security.access_helpers import PASSPHRASE, install, policy, write_key

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "contract-pipeline/guarded"
runner = CliRunner()


def _trigger(api: str, deployment: dict, **params: object) -> str:
    """The UI's Run button: the form holds the deployment's parameters, some edited."""
    form = {**deployment["parameters"]["params"], **params}
    reply = api_call("POST", f"{api}/deployments/{deployment['id']}/create_flow_run", json={
        "parameters": {"params": form}, "state": {"type": "SCHEDULED", "message": "Run from the UI"}})
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str, key: Path | None = None):
    with monkeypatch.context() as patch:
        if key is not None:
            patch.setenv("RLHF_WIZARD_PRINCIPAL_KEY", str(key))
        return runner.invoke(app, list(args))


def test_ui_trigger_needs_a_token_and_roles_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlhf_core.ingest.generator import write_synthetic

    started = time.monotonic()
    for name in ("RLHF_WIZARD_TOKEN", "RLHF_WIZARD_PRINCIPAL_KEY", "RLHF_WIZARD_ACCESS_ANCHOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RLHF_WIZARD_KEY_PASSPHRASE", PASSPHRASE)  # also encrypts the operator key
    lake_root = tmp_path / "lake"
    install(lake_root, policy({"alice": ["admin"], "op": ["operator"], "auth": ["author"],
                               "aud": ["auditor"]}), ["alice"])
    keys = {name: write_key(tmp_path, name) for name in ("op", "auth", "aud")}
    data = lake_root / "incoming" / "synthetic"
    write_synthetic(data, 600, seed=3)
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(json.dumps({"name": "access-test", "deployments": [{
        "name": "guarded", "entrypoint": "flows/contract_pipeline.py:contract_pipeline",
        "parameters": {"params": {
            "contract": str(REPO_ROOT / "configs" / "contracts" / "demo.yaml"), "data": str(data),
            "run_id": "guarded", "lake_root": str(lake_root), "optimize": False, "evaluate": False}}}]}))
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(lake_root))

    home = tmp_path / "prefect-home"
    home.mkdir()
    unused = {f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
        "SCHEDULER", "LATE_RUNS", "FOREMAN", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "TRIGGERS")}
    with prefect_server(home, home / "server.log", **unused) as (api, _):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(QUIET_ENV, PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "client-home"),
                   PREFECT_RUNNER_POLL_FREQUENCY="1", RLHF_WIZARD_HOME=str(lake_root))
        serve = Service("rlhf-wizard serve", [str(BIN / "rlhf-wizard"), "serve", "--prefect-file",
                                              str(prefect_file)], env, tmp_path / "serve.log")
        try:
            deployment = wait_deployment(api, DEPLOYMENT, serve, timeout_s=60)

            # The UI's Run button, once without a token and once with an operator's (issued by
            # the CLI): started together, so the two runs' start-up overlaps.
            issued = _cli(monkeypatch, "access", "token", "--role", "operator", "--ttl", "10m",
                          "--run-id", "guarded-op", "--key", str(keys["op"]))
            assert issued.exit_code == 0, issued.output
            anonymous = _trigger(api, deployment, run_id="no-token")
            operator = _trigger(api, deployment, run_id="guarded-op", token=issued.output.strip())

            refused = wait_flow_run(api, anonymous, 90, serve)
            assert refused["state"]["type"] == "FAILED", refused["state"]
            message = refused["state"]["message"]
            assert "access denied: anonymous may not run (run no-token): no credentials" in message
            assert "could not be audited" not in message
            tasks = api_call("POST", f"{api}/task_runs/filter",
                          json={"flow_runs": {"id": {"any_": [anonymous]}}}).json()
            assert tasks == []
            assert not Lake(lake_root).part_paths("runs", "no-token")
            denials = [e for e in AuditLog(lake_root).entries() if e.kind == "access_denied"]
            assert [(e.actor, e.subject) for e in denials] == [("anonymous", "no-token")]

            done = wait_flow_run(api, operator, 150, serve)
            assert done["state"]["type"] == "COMPLETED", f"{done['state']}\n{serve.tail()}"
            tasks = api_call("POST", f"{api}/task_runs/filter",
                          json={"flow_runs": {"id": {"any_": [operator]}}}).json()
            assert tasks, "the operator's run ran no task"
            assert Lake(lake_root).part_paths("scores", "guarded-op")
            assert not [t for t in Lake(lake_root).list_tables()
                        if Lake(lake_root).part_paths(t, "no-token")]
            run_entries = [e for e in AuditLog(lake_root).entries() if e.subject == "guarded-op"]
            assert [e.kind for e in run_entries][:2] == ["access_granted", "run_started"]
            assert all(e.actor == "op" and e.details.get("role") == "operator" for e in run_entries)
        finally:
            survivors = serve.stop()
        assert not survivors, f"processes left behind by serve: {survivors}"

    # An author may not export; an auditor reads the audit log and nothing else.
    author = _cli(monkeypatch, "access", "token", "--role", "author", "--ttl", "5m", "--key",
                  str(keys["auth"]))
    exported = _cli(monkeypatch, "--token", author.output.strip(), "export", "guarded-op", "--out",
                    str(lake_root / "exports" / "pairs.jsonl"))
    assert exported.exit_code == 1
    assert "access denied: auth may not export (run guarded-op): missing permission 'export'" in \
        str(exported.exception)
    assert not (lake_root / "exports").exists()
    log = _cli(monkeypatch, "audit", "log", "--json", key=keys["aud"])
    assert log.exit_code == 0, log.output
    kinds = [(e["kind"], e["actor"]) for e in json.loads(log.output)]
    assert ("access_denied", "anonymous") in kinds and ("access_denied", "auth") in kinds
    for command in (["report", "guarded-op"], ["export", "guarded-op", "--out", str(tmp_path / "x.jsonl")],
                    ["query", "SELECT count(*) FROM scores"]):
        denied = _cli(monkeypatch, *command, key=keys["aud"])
        assert denied.exit_code == 1 and "access denied: aud may not" in str(denied.exception), command
    print(f"\nreal-server access test: {time.monotonic() - started:.1f} s")
