"""The product surface: plan a campaign, render it, publish it to the lake, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.errors import ConfigError, PlannerError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from rlhf_core.planner import (
    PLANS_SCHEMA,
    QIEAParams,
    SearchConfig,
    check_schedule,
    gantt_png,
    load_campaign,
    plan_markdown,
    plan_project,
)
from rlhf_core.planner.publish import publish_plan
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "configs" / "campaigns" / "rlhf_campaign.yaml"
CONFIG = SearchConfig(budget=480, seed=5, params=QIEAParams(islands=2, pop_size=8))
PLANS = Table.PLANS


@pytest.fixture(scope="module")
def campaign_plan():
    return plan_project(load_campaign(EXAMPLE), CONFIG)


def test_campaign_plan_is_feasible_and_respects_the_contract(campaign_plan) -> None:
    plan = campaign_plan
    proj = plan.project
    assert check_schedule(proj.arrays(), plan.starts) == plan.makespan
    assert plan.makespan >= plan.lower_bound == 25
    idx = proj.index()
    for name in ("export-policy", "export-reward-model"):
        assert plan.starts[idx[name]] >= plan.finishes[idx["safety-review"]]
    # the last-finishing activity has no slack
    assert plan.critical[int(np.argmax(plan.finishes))]
    assert (plan.slack >= 0).all() and (plan.starts + plan.slack + proj.arrays().durations <= plan.makespan).all()


def test_gantt_and_markdown(campaign_plan) -> None:
    png = gantt_png(campaign_plan)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    md = plan_markdown(campaign_plan)
    assert f"| {campaign_plan.makespan} | 25 |" in md
    assert md.count("| yes |") == int(campaign_plan.critical.sum())


def test_publish_to_lake(campaign_plan, wizard_home: Path) -> None:
    summary = publish_plan(campaign_plan, "plan-test-1", str(wizard_home))
    table = Lake(str(wizard_home)).read_table(PLANS, run_id="plan-test-1")
    assert table.num_rows == campaign_plan.project.n_activities
    assert int(table.column("makespan")[0].as_py()) == summary["makespan"] == campaign_plan.makespan
    assert pq.read_schema(summary["table"]).field("start").type == PLANS_SCHEMA.field("start").type
    assert Path(summary["gantt"]).read_bytes()[:4] == b"\x89PNG"
    assert "# Plan: rlhf-q4" in Path(summary["markdown"]).read_text()


def test_cli_plans_a_psplib_instance(shared_data: Path, wizard_home: Path) -> None:
    sm = shared_data / "psplib/j30/instances/j301_1.sm"
    result = CliRunner().invoke(
        app, ["plan", "--psplib", str(sm), "--budget", "480", "--islands", "2", "--seed", "5", "--run-id", "cli-1"]
    )
    assert result.exit_code == 0, result.output
    assert "critical:" in result.output and "plan-gantt.png" in result.output
    rows = Lake(str(wizard_home)).read_table(PLANS, run_id="cli-1")
    assert rows.num_rows == 32 and min(rows.column("makespan").to_pylist()) >= 43


def test_cli_plans_with_the_bi_population_ga(shared_data: Path, wizard_home: Path) -> None:
    sm = shared_data / "psplib/j30/instances/j301_1.sm"
    args = ["plan", "--psplib", str(sm), "--algorithm", "bpga", "--budget", "400", "--population", "40"]
    result = CliRunner().invoke(app, [*args, "--restart-after", "2", "--run-id", "cli-bpga"])
    assert result.exit_code == 0, result.output
    rows = Lake(str(wizard_home)).read_table(PLANS, run_id="cli-bpga")
    assert rows.num_rows == 32 and set(rows.column("algorithm").to_pylist()) == {"bpga"}
    assert set(rows.column("schedules").to_pylist()) == {400} and min(rows.column("makespan").to_pylist()) >= 43
    small = CliRunner().invoke(app, [*args[:-4], "--budget", "30", "--population", "40"])
    assert isinstance(small.exception, PlannerError)
    assert "schedule budget 30 is below one generation (40 schedules)" in str(small.exception)
    # The choices come from the configuration's algorithm tags; click names the option and value.
    unknown = CliRunner().invoke(app, [*args[:3], "--algorithm", "sa"])
    said = " ".join(unknown.output.replace("│", " ").split())
    assert unknown.exit_code == 2
    assert "Invalid value for '--algorithm'" in said and "'sa' is not one of 'qiea', 'bpga', 'ga'" in said


def test_cli_reports_a_cyclic_campaign(tmp_path: Path, wizard_home: Path) -> None:
    bad = tmp_path / "cyclic.yaml"
    bad.write_text(
        "campaign: c\nresources: {gpus: 2}\njobs:\n"
        "  - {name: a, duration: 1, after: [b]}\n  - {name: b, duration: 1, after: [a]}\n"
    )
    result = CliRunner().invoke(app, ["plan", str(bad)])
    assert result.exit_code != 0
    assert isinstance(result.exception, PlannerError) and "precedence cycle" in str(result.exception)
    both = CliRunner().invoke(app, ["plan", str(bad), "--psplib", str(bad)])
    assert "exactly one of" in str(both.exception)


def test_cli_refuses_window_moves_that_leave_no_observed_child(shared_data: Path, wizard_home: Path) -> None:
    sm = shared_data / "psplib/j30/instances/j301_1.sm"
    result = CliRunner().invoke(app, ["plan", "--psplib", str(sm), "--budget", "480", "--pop-size", "2"])
    assert result.exit_code != 0 and isinstance(result.exception, PlannerError)
    assert "window_moves 2 leaves no observed child in an island of 2" in str(result.exception)
    assert Lake(str(wizard_home)).list_runs(PLANS) == []  # nothing half-written


def test_cli_takes_algorithm_options_from_the_configuration(shared_data: Path, wizard_home: Path) -> None:
    sm = str(shared_data / "psplib/j30/instances/j301_1.sm")
    base = ["plan", "--psplib", sm, "--algorithm", "bpga"]
    # --pop-size and --population name the same parameter (BPGA: each population).
    small = CliRunner().invoke(app, [*base, "--budget", "30", "--pop-size", "40"])
    assert isinstance(small.exception, PlannerError)
    assert "schedule budget 30 is below one generation (40 schedules)" in str(small.exception)
    # An option the algorithm does not have, and a value out of range, are refused by the config.
    islands = CliRunner().invoke(app, [*base, "--islands", "2"])
    assert isinstance(islands.exception, ConfigError)
    assert str(islands.exception).startswith("<command line>: bpga has no parameter 'islands'")
    share = CliRunner().invoke(app, [*base, "--parallel-share", "1.5"])
    assert isinstance(share.exception, ConfigError)
    assert "parallel_share: Input should be less than or equal to 1" in str(share.exception)
    parallel = CliRunner().invoke(app, [*base, "--sgs", "parallel"])
    assert isinstance(parallel.exception, PlannerError) and "sgs='parallel'" in str(parallel.exception)
    assert Lake(str(wizard_home)).list_runs(PLANS) == []
    shown = CliRunner().invoke(app, ["plan", "--help"])
    said = " ".join(shown.output.replace("│", " ").split())
    assert shown.exit_code == 0
    assert "(default: qiea 4, bpga 80, ga 16)" in said  # the params classes' defaults
