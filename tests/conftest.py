"""Shared fixtures: isolated lake/Prefect homes, and the read-only shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip (with the reason) only when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (a fresh clone without ../shared/data)")
    return SHARED_DATA


@pytest.fixture()
def wizard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh lake root (``RLHF_WIZARD_HOME``) for one test."""
    home = tmp_path / "wizard-home"
    home.mkdir()
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(home))
    return home
