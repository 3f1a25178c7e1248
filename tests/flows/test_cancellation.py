"""SIGTERM / SIGINT to a real `rlhf-wizard run`: recorded as cancelled, no process left, re-runnable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rlhf_core.ingest.generator import write_synthetic
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.runs import get_run
from rlhf_core.lake.store import Lake
from rlhf_core.security.audit import AuditLog
from tests.conftest import REPO_ROOT

WIZARD = Path(sys.executable).with_name("rlhf-wizard")
DEMO = REPO_ROOT / "configs" / "contracts" / "demo.yaml"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(RLHF_WIZARD_HOME=str(home / "lake"), PREFECT_HOME=str(home / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env


def _start(home: Path, data: Path, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(WIZARD), "run", "--contract", str(DEMO), "--data", str(data), "--run-id", run_id,
         "--workers", "2"], cwd=home, env=_env(home), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout_s} s")


def _own_tracebacks(out: str) -> list[str]:
    """Tracebacks through the project's code (an uncaught error of the CLI or the flow). A Dask
    worker may still log a heartbeat failure while its scheduler shuts down; that one is not ours."""
    blocks = out.split("Traceback (most recent call last):")[1:]
    ours = ("rlhf_cli", "rlhf_core", "/flows/", "/tasks/", "/ops/", "Exception ignored")
    return [b[:400] for b in blocks if any(mark in b.split("\n\n")[0] for mark in ours)]


def _scoring_since(lake: Lake, started: float) -> bool:
    """This attempt is scoring or has just scored (verification, optimisation, evaluation and
    the report still to come)."""
    staging = Path(lake.staging_path(Table.SCORES, "cx"))
    try:
        if staging.is_dir() and staging.stat().st_mtime >= started:
            return True
        return any(Path(p).stat().st_mtime >= started for p in lake.part_paths(Table.SCORES, "cx"))
    except FileNotFoundError:  # renamed between the listing and the stat: look again
        return False


def _cancel(proc: subprocess.Popen, lake: Lake, signum: int, after_ingest: bool) -> str:
    """Send ``signum`` once the run recorded its start (or, ``after_ingest``, once it committed its
    ingest, mid-run); return the run's output."""
    started = time.time()
    try:
        _wait_for(lambda: bool(lake.part_paths(Table.RUNS, "cx"))
                  and get_run(lake, "cx").status == "running", timeout_s=120)
        if after_ingest:  # mid-run: scoring, with verification, optimisation and report to come
            _wait_for(lambda: _scoring_since(lake, started), timeout_s=120)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the run should have started a Prefect server and Dask processes"
        proc.send_signal(signum)
        # A signal that lands while Prefect finalises a task can be absorbed by it (a known
        # window, see docs/architecture.md#cancellation); the next one then cancels, as a user's
        # second Ctrl-C does. At most three, three seconds apart.
        for _ in range(3):
            try:
                out, _ = proc.communicate(timeout=3)
                break
            except subprocess.TimeoutExpired:
                proc.send_signal(signum)
        else:
            out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, out[-2000:]
    name = signal.Signals(signum).name
    lines = [line for line in out.splitlines() if "cancelled by" in line]
    assert lines and f"cancelled by {name}" in lines[-1], out[-2000:]
    assert not _own_tracebacks(out), out[-3000:]
    # The cancellation line is the last thing printed (rich may wrap it over two lines).
    assert "re-run it with --run-id cx" in " ".join(out.strip().splitlines()[-2:])
    _wait_for(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE
                              for c in children), timeout_s=15)
    record = get_run(lake, "cx")
    assert record.status == "cancelled" and record.error == f"cancelled by {name}"
    finished = [e for e in AuditLog(lake).entries() if e.kind == "run_finished" and e.subject == "cx"]
    assert finished and finished[-1].details["status"] == "cancelled"
    for table in lake.list_tables():  # only committed partitions are visible: part files only
        for path in lake.part_paths(table, "cx"):
            assert Path(path).name.startswith("part-") and Path(path).suffix == ".parquet"
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_signals_cancel_cleanly_at_two_stages_and_the_run_id_can_be_rerun(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_synthetic(data, 150_000, seed=4)
    lake = Lake(tmp_path / "lake")
    _cancel(_start(tmp_path, data, "cx"), lake, signal.SIGTERM, after_ingest=False)  # at start-up
    _cancel(_start(tmp_path, data, "cx"), lake, signal.SIGINT, after_ingest=True)  # mid-run, same id
    rerun = _start(tmp_path, data, "cx")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out[-3000:]
    assert get_run(lake, "cx").status == "completed"
    assert lake.count_rows(Table.SCORES, "cx") == 150_000
