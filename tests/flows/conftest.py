"""Fixtures for flow tests: one Prefect test harness per session, shared by spawned Dask workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlhf_core.io.generator import write_synthetic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONTRACT = REPO_ROOT / "configs" / "contracts" / "demo.yaml"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    """A temporary Prefect API whose URL is also exported, so Dask workers report to it."""
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 generated responses in 3 Parquet files (750 prompts x 4 candidates)."""
    out = tmp_path_factory.mktemp("demo-data")
    write_synthetic(out, 3_000, seed=7, chunk_rows=1_024)
    return out
