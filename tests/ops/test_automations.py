"""The alert automations of ``deployments/automations/`` against a real ``prefect server start``.

``deploy_automations`` (what ``rlhf-wizard deploy`` runs) saves two webhook blocks pointing at a
real HTTP receiver on 127.0.0.1 and registers the automations, with the proactive windows cut to
10 s. A client process then runs real flows (``validate-contract`` and ``ingest-dataset`` fail,
``validate-contract`` then completes) and emits a run's rates with the quarantine rate over its
threshold. The receiver must get: one failure notification per failed flow, one rate alert for
the quarantine rate only, one escalation for the flow that did not recover (ingest-dataset), and
the nightly-not-completed alert (no nightly run happened).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ops.automations import (
    ALERTS_BLOCK,
    ESCALATION_BLOCK,
    WEBHOOK_SLUG,
    block_references,
    read_automation_files,
    resolve_automations,
)
from ops.deployments import PREFECT_FILE, load_deployments
from rlhf_core.errors import ConfigError
from tests.conftest import REPO_ROOT
from tests.deployments.processes import QUIET_ENV, prefect_server

BIN = Path(sys.executable).parent
WINDOW_S = 10  # the shortest window Prefect accepts for a proactive trigger


def _flow_names() -> set[str]:
    names = set()
    for path in (REPO_ROOT / "flows").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "flow":
                names |= {k.value.value for k in node.keywords if k.arg == "name"}
    return names


def test_files_are_valid_automations_watching_every_flow() -> None:
    raw = {a["name"]: a for a in read_automation_files()}
    assert set(raw) == {"rlhf-run-failed", "rlhf-run-failed-escalation", "rlhf-run-rate-exceeded",
                        "rlhf-nightly-not-completed"}
    refs = block_references(list(raw.values()))
    assert refs["rlhf-run-failed-escalation"] == [(WEBHOOK_SLUG, ESCALATION_BLOCK)]
    assert all(r == [(WEBHOOK_SLUG, ALERTS_BLOCK)] for n, r in refs.items() if "escalation" not in n)
    flows = _flow_names()
    assert len(flows) >= 9
    for name in ("rlhf-run-failed", "rlhf-run-failed-escalation"):
        assert set(raw[name]["trigger"]["match_related"]["prefect.resource.name"]) == flows, name
    # The nightly window covers the nightly deployment's daily schedule.
    nightly = next(s for s in load_deployments(PREFECT_FILE) if s.name == "nightly-scoring")
    assert [s.cron for s in nightly.schedules] == ["0 2 * * *"]
    related = {r["prefect.resource.role"]: r["prefect.resource.name"]
               for r in raw["rlhf-nightly-not-completed"]["trigger"]["match_related"]}
    assert related == {"flow": "contract-pipeline", "deployment": nightly.name}
    assert 24 * 3600 < raw["rlhf-nightly-not-completed"]["trigger"]["within"] <= 30 * 3600
    # Prefect's own model accepts every file once the block references are ids.
    ids = {ref: __import__("uuid").uuid4() for found in refs.values() for ref in found}
    assert len(resolve_automations(list(raw.values()), ids)) == 4
    with pytest.raises(ConfigError, match="rlhf-alerts is not on the server"):
        resolve_automations([raw["rlhf-run-failed"]], {})


class _Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every JSON body POSTed, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer._lock:
                    outer.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def messages(self, path: str) -> list[dict]:
        with self._lock:
            return [body for p, body in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_CLIENT = """
import sys
from flows.ingest_dataset import IngestDatasetParams, ingest_dataset
from flows.validate_contract import ValidateContractParams, validate_contract
from tasks.events import emit_run_rates

lake, contract = sys.argv[1], sys.argv[2]
for call in (lambda: validate_contract(ValidateContractParams(contract=lake + "/missing.yaml", lake_root=lake)),
             lambda: ingest_dataset(IngestDatasetParams(source=lake + "/missing.jsonl", run_id="r1", lake_root=lake))):
    try:
        call()
    except Exception as exc:
        print("failed as intended:", type(exc).__name__)
    else:
        raise SystemExit("the flow was meant to fail")
validate_contract(ValidateContractParams(contract=contract, lake_root=lake))
out = emit_run_rates("nightly-helpsteer", "contract-pipeline", {"rows_in": 100, "quarantined": 20},
                     {"rows": 80, "veto_rate": 0.1, "violations": {"no_harm": 0.05}})
assert out["exceeded"] == ["quarantine"], out
"""


@pytest.fixture()
def server(tmp_path: Path):
    """A real Prefect server (own home, proactive triggers evaluated every second)."""
    with prefect_server(tmp_path / "prefect-server-home", tmp_path / "server.log",
                        PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY="PT1S") as running:
        yield running


def _short_windows(folder: Path) -> None:
    """Copies of the automation files with every proactive window cut to WINDOW_S."""
    folder.mkdir()
    yaml = YAML()
    for path in sorted((REPO_ROOT / "deployments" / "automations").glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"))
        if data["trigger"].get("posture") == "Proactive":
            data["trigger"]["within"] = WINDOW_S
        with (folder / path.name).open("w", encoding="utf-8") as handle:
            yaml.dump(data, handle)


@pytest.mark.integration
def test_automations_notify_a_webhook_from_a_real_server(server, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ops.automations import deploy_automations

    api, service = server
    started = time.monotonic()
    receiver = _Receiver()
    folder = tmp_path / "automations"
    _short_windows(folder)
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            first = deploy_automations(folder, alerts_webhook=f"{receiver.url}/alerts",
                                       escalation_webhook=f"{receiver.url}/escalation")
            again = deploy_automations(folder)  # the blocks exist now: found by name, updated
        assert first["skipped"] == [] and again["skipped"] == []
        assert {a["action"] for a in first["applied"]} == {"created"}
        assert {a["action"] for a in again["applied"]} == {"updated"}
        assert [a["id"] for a in again["applied"]] == [a["id"] for a in first["applied"]]

        lake = tmp_path / "lake"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(QUIET_ENV, PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "client-home"),
                   RLHF_WIZARD_HOME=str(lake), RLHF_WIZARD_ALERT_QUARANTINE_RATE="0.1")
        done = subprocess.run([sys.executable, "-c", _CLIENT, str(lake),
                               str(REPO_ROOT / "configs" / "contracts" / "demo.yaml")],
                              env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
                              check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

        def complete() -> bool:
            alerts = receiver.messages("/alerts")
            return (sum("Failed" in m["subject"] for m in alerts) >= 2
                    and any("quarantine" in m["subject"] for m in alerts)
                    and any("nightly" in m["subject"] for m in alerts)
                    and len(receiver.messages("/escalation")) >= 1)

        deadline = time.monotonic() + 4 * WINDOW_S
        while not complete() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.5)  # validate-contract's window closed first; no escalation of it may follow
        alerts, escalations = receiver.messages("/alerts"), receiver.messages("/escalation")
        assert complete(), f"received {receiver.received}\n{service.tail()}"
    finally:
        receiver.close()

    failed = sorted(m["subject"] for m in alerts if "Failed" in m["subject"])
    assert len(failed) == 2, failed
    assert "ingest-dataset run" in failed[0] and "validate-contract run" in failed[1]
    assert all(m["text"] == f"{m['subject']}\n{m['body']}" for m in alerts)
    assert "missing.jsonl" in next(m["body"] for m in alerts if "ingest-dataset" in m["subject"])
    rates = [m for m in alerts if "rate" in m["subject"]]
    assert len(rates) == 1 and "nightly-helpsteer: quarantine rate" in rates[0]["subject"]
    assert "0.2000 is above the threshold 0.1000" in rates[0]["body"]
    assert [m["subject"] for m in escalations] == ["[rlhf] ESCALATION: ingest-dataset still failing"]
    print(f"\nautomations against a real server: {time.monotonic() - started:.1f} s")
