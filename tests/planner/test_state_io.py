"""Island states in the lake, the lake-backed island steps, and ``plan --local`` without Prefect."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rlhf_core.errors import PlannerError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.store import Lake
from rlhf_core.planner import (
    Project,
    QIEAParams,
    SearchConfig,
    plan_project,
    start_island,
    to_instance,
)
from rlhf_core.planner.publish import publish_best_island
from rlhf_core.planner.source import PlanSource
from rlhf_core.planner.state_io import (
    advance_stored_island,
    island_path,
    load_island,
    migrate_stored_islands,
    save_state,
    start_stored_island,
    state_to_numpy,
)
from tests.conftest import REPO_ROOT

CONFIG = SearchConfig(budget=96, seed=3, params=QIEAParams(islands=2, pop_size=4, migration_interval=2))
CAMPAIGN = (
    "campaign: tiny\nresources: {gpu: 3}\njobs:\n  - {name: A, duration: 3, needs: {gpu: 2}}\n"
    "  - {name: B, duration: 2, needs: {gpu: 2}}\n  - {name: C, duration: 2, needs: {gpu: 1}, after: [A]}\n"
)


def test_a_state_round_trips_and_a_foreign_file_is_refused(tiny: Project, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    state = start_island(to_instance(tiny.arrays()), CONFIG, 1)
    path = save_state(lake, island_path("r1", 1, 0), state)
    assert path == "work/plans/r1/island-01-epoch-0000.npz"
    assert island_path("r1", 0, 3, migrated=True) == "work/plans/r1/island-00-epoch-0003-migrated.npz"
    again = load_island(lake, path)
    for name, value in state_to_numpy(state).items():
        assert np.array_equal(np.asarray(getattr(again, name)), value), name
    arrays = state_to_numpy(state)
    del arrays["key"]
    lake.write_file_atomic("work/plans/r1/old.npz", _npz(arrays))
    with pytest.raises(PlannerError, match=r"island state lacks fields \['key'\]"):
        load_island(lake, "work/plans/r1/old.npz")


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_stored_islands_find_the_in_process_plan(tmp_path: Path) -> None:
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text(CAMPAIGN)
    source, root = PlanSource(path=str(yaml)), str(tmp_path / "lake")
    paths = [start_stored_island(source, CONFIG, i, "r2", root) for i in range(2)]
    epochs = CONFIG.generations() // CONFIG.params.migration_interval
    assert epochs == 3
    for epoch in range(1, epochs + 1):
        paths = [advance_stored_island(source, CONFIG, i, epoch, p, "r2", root) for i, p in enumerate(paths)]
        paths = migrate_stored_islands(paths, epoch, "r2", root)
    assert paths[0].endswith("island-00-epoch-0003-migrated.npz")
    summary = publish_best_island(source, CONFIG, paths, "r2", root, started=0.0)
    local = plan_project(source.load(), CONFIG)
    assert (summary["makespan"], summary["schedules"]) == (local.makespan, local.schedules) == (5, 96)
    rows = Lake(root).read_table(Table.PLANS, run_id="r2").to_pydict()
    assert rows["start"] == local.starts.tolist()
    assert not (tmp_path / "lake" / "work" / "plans" / "r2").exists()


_PROBE = """
import json, sys
import typer
from typer.testing import CliRunner
from rlhf_cli import plan

root = typer.Typer()

@root.callback()
def _root() -> None:
    pass

plan.register(root)
result = CliRunner().invoke(root, ["plan", sys.argv[1], "--budget", "48", "--islands", "1",
                                   "--run-id", "local-1", "--lake", sys.argv[2]])
bad = sorted(m for m in sys.modules
             if m.split(".")[0] in {"prefect", "prefect_dask", "dask", "distributed", "flows", "tasks", "ops"})
print(json.dumps({"exit": result.exit_code, "output": result.output[-3000:], "bad": bad}))
"""


def test_plan_local_imports_no_prefect(tmp_path: Path) -> None:
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text(CAMPAIGN)
    out = subprocess.run([sys.executable, "-c", _PROBE, str(yaml), str(tmp_path / "lake")], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, report["output"]
    assert "critical: A, B, C" in report["output"]  # A, then B and C together: all end at 5
    assert report["bad"] == []
    assert Lake(str(tmp_path / "lake")).read_table(Table.PLANS, run_id="local-1").num_rows == 3
