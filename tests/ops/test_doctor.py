"""``rlhf-wizard doctor`` on a healthy setup and on broken ones (exit code + the failing check)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ops.doctor import (
    DISTRIBUTION,
    check_distribution,
    check_key_directory,
    check_packages,
    check_python,
    declared_requirements,
)
from rlhf_cli.main import app
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import AuditLog
from tests.deployments.processes import free_port

runner = CliRunner()


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, wizard_home: Path) -> Path:
    """No configured Prefect server, scheduler or operator key: a local setup."""
    for name in ("PREFECT_API_URL", "RLHF_WIZARD_DASK_ADDRESS", "RLHF_WIZARD_OPERATOR_KEY"):
        monkeypatch.delenv(name, raising=False)
    return wizard_home


def _doctor(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def _by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_healthy_setup_passes_with_a_real_scheduler(clean_env: Path) -> None:
    from distributed import LocalCluster

    AuditLog(Lake(clean_env)).append("doctor_test", "subject", {})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        code, report = _doctor("--dask-address", cluster.scheduler_address)
    checks = _by_name(report)
    assert code == 0, [c for c in report["checks"] if not c["ok"]]
    assert report["ok"] is True
    assert checks["dask"]["detail"].endswith("1 workers")
    assert checks["operator key"]["detail"].endswith("(mode 0600)")
    assert "audit" in checks["warehouse"]["detail"]
    assert checks["prefect api"]["detail"].startswith("ephemeral")
    assert checks[DISTRIBUTION]["ok"] and checks["packages"]["ok"]


def test_unwritable_lake_fails_even_as_root(clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the lake's parent should be")
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(blocker / "lake"))
    code, report = _doctor()
    checks = _by_name(report)
    assert code == 1
    assert checks["lake writable"]["ok"] is False
    assert "RLHF_WIZARD_HOME" in checks["lake writable"]["fix"]
    assert checks["warehouse"]["ok"] is False
    assert {c["name"] for c in report["checks"] if not c["ok"]} <= {"lake writable", "lake tables", "warehouse"}


def test_unreachable_scheduler_fails(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLHF_WIZARD_DASK_ADDRESS", f"tcp://127.0.0.1:{free_port()}")
    code, report = _doctor()
    failed = [c for c in report["checks"] if not c["ok"]]
    assert code == 1
    assert [c["name"] for c in failed] == ["dask"]
    assert "unreachable" in failed[0]["detail"] and "RLHF_WIZARD_DASK_ADDRESS" in failed[0]["fix"]


def test_unreachable_prefect_server_fails(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    code, report = _doctor()
    failed = [c["name"] for c in report["checks"] if not c["ok"]]
    assert code == 1 and failed == ["prefect api"]


def test_table_output_names_the_failure_and_its_fix(clean_env: Path) -> None:
    key = clean_env / "keys" / "operator.pem"
    AuditLog(Lake(clean_env)).append("doctor_test", "subject", {})
    os.chmod(key, 0o644)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "operator key" in result.stdout and "FAIL" in result.stdout
    assert "chmod 600" in result.stdout or "restore" in result.stdout
    assert "1 of" in result.stdout


@pytest.mark.parametrize(("table", "columns", "problem"), [
    ("runs", {"run_id_text": pa.array(["old"]), "status": pa.array([1])}, "missing column"),
    ("scores", {"prompt_id": pa.array(["p"]), "response_id": pa.array(["r"]),
                "reward": pa.array([0.5], pa.float64())}, "column reward is double, expected float"),
])
def test_stale_table_schema_is_named(clean_env: Path, table: str, columns: dict, problem: str) -> None:
    part = clean_env / "lake" / table / "run_id=old" / "part-00000.parquet"
    part.parent.mkdir(parents=True)
    pq.write_table(pa.table(columns), part)
    code, report = _doctor()
    checks = _by_name(report)
    assert code == 1
    assert checks[f"lake table {table}"]["ok"] is False
    assert problem in checks[f"lake table {table}"]["detail"]
    assert "run_id=old" in checks[f"lake table {table}"]["detail"]


def test_versions_and_key_permissions(tmp_path: Path) -> None:
    assert check_python(">=3.11", "3.11.7").ok
    assert not check_python(">=3.12", "3.11.7").ok
    rows = check_packages(["numpy>=2", "numpy>=999", "surely-not-installed-pkg>=1"])
    assert [r.ok for r in rows] == [False, False, False]
    assert rows[0].detail == "1 of 3 within declared ranges"
    assert "outside >=999" in rows[1].detail and "not installed" in rows[2].detail
    encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n…\n"
    (tmp_path / "alice.key.pem").write_text(encrypted)  # no alice.pub
    (tmp_path / "bob.key.pem").write_text("-----BEGIN PRIVATE KEY-----\n…\n")  # not encrypted
    (tmp_path / "bob.pub").write_text("pub")
    (tmp_path / "carol.key.pem").write_text(encrypted)
    os.chmod(tmp_path / "carol.key.pem", 0o644)  # a fresh git clone's mode: fine for demo keys
    (tmp_path / "carol.pub").write_text("pub")
    rows = check_key_directory(tmp_path)
    failed = {r.name: r for r in rows if not r.ok}
    assert set(failed) == {"demo keys", "key alice.key.pem", "key bob.key.pem"}
    assert "alice.pub" in failed["key alice.key.pem"].detail
    assert "not an encrypted" in failed["key bob.key.pem"].detail
    assert "keygen" in failed["key bob.key.pem"].fix


def test_declared_requirements_come_from_the_installed_distribution() -> None:
    """No pyproject.toml: the installed metadata (editable or wheel) names the ranges."""
    requires_python, requirements = declared_requirements()
    assert requires_python == ">=3.11"
    names = {r.split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requirements}
    assert {"prefect", "jax", "duckdb", "pyarrow"} <= names
    assert not any("extra" in r for r in requirements), "dev/bench extras are not runtime needs"
    assert "pytest" not in names
    assert check_distribution().ok
    missing = check_distribution("surely-not-installed-dist")
    assert not missing.ok and "pip install" in missing.fix
