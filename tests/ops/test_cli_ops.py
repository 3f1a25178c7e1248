"""``deploy`` / ``serve`` command behaviour that needs no server: help, listing, refusals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app

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
