"""Fixtures for flow tests (the session Prefect harness is in ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_core.ingest.generator import write_synthetic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONTRACT = REPO_ROOT / "configs" / "contracts" / "demo.yaml"


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 generated responses in 3 Parquet files (750 prompts x 4 candidates)."""
    out = tmp_path_factory.mktemp("demo-data")
    write_synthetic(out, 3_000, seed=7, chunk_rows=1_024)
    return out
