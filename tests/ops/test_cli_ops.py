"""``deploy`` / ``serve`` command behaviour that needs no server: help, listing, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from tests.conftest import REPO_ROOT

runner = CliRunner()


@pytest.mark.parametrize("command", ["deploy", "serve", "doctor"])
def test_help_has_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: " in result.stdout and f"rlhf-wizard {command}" in result.stdout


def test_serve_list_shows_every_deployment_and_schedule(wizard_home) -> None:
    result = runner.invoke(app, ["serve", "--list", "--json"])
    assert result.exit_code == 0, result.stdout
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["contract-pipeline/nightly-scoring"]["schedules"] == "cron 0 2 * * * UTC"
    assert rows["build-report/weekly"]["schedules"] == "cron 0 6 * * 1 UTC"
    assert rows["validate-contract/on-demand"]["schedules"] == "on demand"
    # The lake-root template resolves to the (absolute) RLHF_WIZARD_HOME.
    assert rows["validate-contract/on-demand"]["parameters"]["params"]["lake_root"] == str(wizard_home)
    table = runner.invoke(app, ["serve", "--list"])
    assert table.exit_code == 0 and "on demand" in table.stdout


@pytest.mark.parametrize("command", [["deploy"], ["serve"]])
def test_commands_refuse_without_a_server(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from rlhf_core.errors import DeploymentError

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = runner.invoke(app, command)
    assert result.exit_code != 0
    assert isinstance(result.exception, DeploymentError)
    assert "PREFECT_API_URL is not set" in str(result.exception)


def test_serve_rejects_a_malformed_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlhf_core.errors import ConfigError

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    result = runner.invoke(app, ["serve", "--interval", "validate-contract"])
    assert isinstance(result.exception, ConfigError)
    assert "NAME=SECONDS" in str(result.exception)


def test_a_run_on_an_existing_scheduler_without_a_prefect_api_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run would start its own temporary API that the cluster's workers cannot follow."""
    from rlhf_core.errors import ConfigError

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(tmp_path / "lake"))
    data = tmp_path / "data.parquet"
    data.write_bytes(b"")
    result = CliRunner().invoke(app, ["run", "--contract", str(REPO_ROOT / "configs" / "contracts" / "demo.yaml"),
                                      "--data", str(data), "--dask-address", "tcp://127.0.0.1:1"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "needs a persistent Prefect API" in str(result.exception)
    assert "rlhf-wizard server start" in str(result.exception)
    assert "export PREFECT_API_URL" in str(result.exception)
    assert not (tmp_path / "lake").exists()  # refused before anything was written
