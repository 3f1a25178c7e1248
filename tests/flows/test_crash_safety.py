"""SIGKILL the pipeline while it scores, re-run the same run id: identical results, nothing partial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.contract_pipeline import ContractPipelineParams, contract_pipeline
from ops.config import PipelineConfig
from rlhf_core.ingest.generator import write_synthetic
from rlhf_core.lake.store import Lake
from tests.flows.conftest import DEMO_CONTRACT

pytestmark = pytest.mark.integration

ROWS, SHARD_ROWS = 12_000, 1_000


def _scores(lake: Path, run_id: str):
    return Lake(lake).read_table("scores", run_id=run_id).drop_columns(["run_id"]).sort_by("response_id")


def _visible_parquet(lake: Path) -> list[Path]:
    return [p for p in lake.rglob("*.parquet")
            if not any(part.startswith(".") for part in p.relative_to(lake).parts)]


def _run_cli(lake: Path, data: Path, preset: Path, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "RLHF_WIZARD_HOME": str(lake)}
    cli = str(Path(sys.executable).with_name("rlhf-wizard"))
    return subprocess.Popen(
        [cli, "run", "--contract", str(DEMO_CONTRACT), "--data", str(data), "--run-id", run_id,
         "--config", str(preset)],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def test_sigkill_during_scoring_then_rerun_is_identical(prefect_harness, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_synthetic(data, ROWS, seed=11, chunk_rows=4_096)
    preset = tmp_path / "preset.yaml"
    preset.write_text(f"scoring: {{shard_rows: {SHARD_ROWS}}}\ndask: {{n_workers: 1}}\n")
    lake = tmp_path / "lake"
    reference = tmp_path / "reference-lake"

    config = PipelineConfig.model_validate({"scoring": {"shard_rows": SHARD_ROWS}, "dask": {"n_workers": 1}})
    contract_pipeline(ContractPipelineParams(contract=str(DEMO_CONTRACT), data=str(data), run_id="crash-1",
                                             lake_root=str(reference), config=config))
    expected = _scores(reference, "crash-1")
    assert expected.num_rows == ROWS

    proc = _run_cli(lake, data, preset, "crash-1")
    staging = lake / "lake" / "scores" / ".staging-run_id=crash-1"
    deadline = time.monotonic() + 300
    try:
        while not (staging.is_dir() and any(staging.glob("part-*.parquet"))):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "scoring never started"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    # Killed mid-scoring: the scores partition is not visible, and every visible file is whole.
    assert "crash-1" not in Lake(lake).list_runs("scores")
    for path in _visible_parquet(lake):
        assert pq.ParquetFile(path).metadata.num_rows >= 0
    staged_before = len(list(staging.glob("part-*.parquet")))
    assert 1 <= staged_before < ROWS // SHARD_ROWS

    rerun = _run_cli(lake, data, preset, "crash-1")
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out.decode()[-3000:]
    assert _scores(lake, "crash-1").equals(expected)
    assert not staging.exists()
