"""``deployments/prefect.yaml``: accepted by Prefect's loader, complete, and runnable as written."""

from __future__ import annotations

import importlib
import inspect
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.cli.deploy._models import PrefectYamlModel
from pydantic import BaseModel

from ops.deployments import PREFECT_FILE, PROJECT_ROOT, load_deployments
from ops.serve import build_deployments, parse_interval_overrides
from rlhf_core.contract import load_contract
from rlhf_core.errors import ConfigError

LAKE = "/srv/lake"


def _flows_in_package() -> dict[str, Flow]:
    """Every @flow defined in a module of ``flows/`` (entrypoint -> flow)."""
    found = {}
    for path in sorted((PROJECT_ROOT / "flows").glob("*.py")):
        module = importlib.import_module(f"flows.{path.stem}")
        for name, value in vars(module).items():
            if isinstance(value, Flow) and value.fn.__module__ == module.__name__:
                found[f"flows/{path.name}:{name}"] = value
    return found


@pytest.fixture(scope="module")
def specs():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RLHF_WIZARD_HOME", LAKE)
        return load_deployments(PREFECT_FILE)


def test_prefect_own_loader_accepts_the_file() -> None:
    raw = yaml.safe_load(PREFECT_FILE.read_text())
    model = PrefectYamlModel.model_validate(raw)
    assert len(model.deployments) == len(raw["deployments"]) >= 6
    for deployment in model.deployments:
        assert deployment.entrypoint and deployment.name
        assert deployment.work_pool is not None and deployment.work_pool.name == "rlhf-local"
        assert "params" in deployment.parameters


def test_every_flow_has_a_deployment(specs) -> None:
    flows = _flows_in_package()
    assert "flows/contract_pipeline.py:contract_pipeline" in flows
    assert set(flows) <= {s.entrypoint for s in specs}, "add the new flow to deployments/prefect.yaml"


def test_parameters_validate_against_each_flows_model(specs) -> None:
    for spec in specs:
        flow = spec.load_flow()
        model = inspect.signature(flow.fn).parameters["params"].annotation
        model = getattr(importlib.import_module(flow.fn.__module__), model) if isinstance(model, str) else model
        assert issubclass(model, BaseModel)
        validated = model.model_validate(spec.parameters["params"])
        assert validated.lake_root == LAKE, spec.entrypoint


def test_relative_paths_in_parameters_exist_from_the_project_root(specs) -> None:
    for spec in specs:
        params = spec.parameters["params"]
        for key in ("contract", "source", "mapping"):
            value = params.get(key)
            value = value.get("path") if isinstance(value, dict) else value
            if not isinstance(value, str) or value.startswith(f"{LAKE}/incoming/"):
                continue  # an input file the user drops into the lake (test below)
            assert not Path(value).is_absolute() and not value.startswith("../"), (
                f"{spec.entrypoint}: {key}={value} is outside the project and the lake")
            assert (PROJECT_ROOT / value).is_file(), f"{spec.entrypoint}: {key}={value}"


def test_input_data_defaults_to_the_lakes_incoming_folder(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from ops.deploy import ensure_incoming, incoming_inputs

    assert "../shared" not in PREFECT_FILE.read_text(encoding="utf-8")
    home = tmp_path / "lake"
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(home))
    specs = load_deployments(PREFECT_FILE)
    by_entry = {s.entrypoint.split(":")[0]: s.parameters["params"] for s in specs}
    expected = f"{home}/incoming/helpsteer.jsonl"
    assert by_entry["flows/contract_pipeline.py"]["data"] == expected
    assert by_entry["flows/ingest_dataset.py"]["source"] == expected
    assert incoming_inputs(specs, str(home)) == [expected]
    assert not home.exists()
    assert ensure_incoming(specs, str(home)) == [str(home / "incoming")]
    assert (home / "incoming").is_dir()
    assert ensure_incoming(specs, str(home)) == [str(home / "incoming")]  # idempotent
    assert ensure_incoming(specs[:1], str(home)) == []  # validate-contract reads no data file


def test_score_deployment_hash_is_the_contracts_current_hash(specs) -> None:
    spec = next(s for s in specs if s.entrypoint.startswith("flows/score_responses.py"))
    params = spec.parameters["params"]
    assert params["contract_hash"] == load_contract(PROJECT_ROOT / params["contract"]).hash


def test_nightly_scoring_and_weekly_report_schedules(specs) -> None:
    by_entry = {s.entrypoint.split(":")[0]: s for s in specs}
    nightly = by_entry["flows/contract_pipeline.py"].schedules
    assert [(s.cron, s.timezone) for s in nightly] == [("0 2 * * *", "UTC")]
    weekly = by_entry["flows/build_report.py"].schedules
    assert [(s.cron, s.timezone) for s in weekly] == [("0 6 * * 1", "UTC")]
    assert not by_entry["flows/validate_contract.py"].schedules


def test_unset_template_stays_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLHF_WIZARD_HOME", raising=False)
    specs = load_deployments(PREFECT_FILE)
    assert specs[0].parameters["params"]["lake_root"] == "{{ $RLHF_WIZARD_HOME }}"


def test_served_deployments_match_the_file_and_take_an_interval_override(specs) -> None:
    deployments = build_deployments(specs, {"validate-contract/on-demand": 7})
    names = [f"{d.flow_name}/{d.name}" for d in deployments]
    assert "contract-pipeline/nightly-scoring" in names and "build-report/weekly" in names
    by_name = dict(zip(names, deployments, strict=True))
    override = by_name["validate-contract/on-demand"].schedules[0].schedule
    assert override.interval == timedelta(seconds=7)
    nightly = by_name["contract-pipeline/nightly-scoring"]
    assert nightly.schedules[0].schedule.cron == "0 2 * * *"
    assert nightly.parameters == next(s for s in specs if s.name == "nightly-scoring").parameters
    assert nightly.enforce_parameter_schema is True


def test_interval_override_errors(specs) -> None:
    with pytest.raises(ConfigError, match="unknown deployments: nope"):
        build_deployments(specs[:1], {"nope": 5})
    with pytest.raises(ConfigError, match="NAME=SECONDS"):
        parse_interval_overrides(["validate-contract"])
    with pytest.raises(ConfigError, match="NAME=SECONDS"):
        parse_interval_overrides(["validate-contract=-3"])
    assert parse_interval_overrides(["validate-contract=2.5"]) == {"validate-contract": 2.5}


def test_invalid_file_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "prefect.yaml"
    bad.write_text("deployments:\n  - name: x\n    entrypoint: flows/validate_contract.py\n")
    with pytest.raises(ConfigError, match=r"deployments\[0\] \(x\)\.entrypoint"):
        load_deployments(bad)


def test_deploy_name_selection(specs) -> None:
    from ops.deploy import missing_deployments, select_deployments

    assert select_deployments(specs, []) == specs
    one = select_deployments(specs, ["validate-contract/on-demand"])
    assert [s.entrypoint for s in one] == ["flows/validate_contract.py:validate_contract"]
    on_demand = select_deployments(specs, ["on-demand"])
    assert on_demand == [s for s in specs if s.name == "on-demand"] and len(on_demand) >= 4
    assert [s.name for s in select_deployments(specs, ["*/weekly"])] == ["weekly"]
    assert select_deployments(specs, ["nope/*"]) == []
    registered = [{"entrypoint": one[0].entrypoint, "name": "on-demand"}]
    assert missing_deployments(one, registered) == []
    assert missing_deployments(specs[:2], registered) == [f"{specs[1].entrypoint} (on-demand)"]
