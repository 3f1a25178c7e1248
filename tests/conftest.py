"""Shared fixtures: isolated lake/Prefect homes, and the read-only shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI gates on a fixed, reproducible sample of every property; `HYPOTHESIS_PROFILE=explore make test`
# draws fresh random examples (and prints a reproduction blob for any failure).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    """One temporary Prefect API for the whole session, its URL exported so that spawned Dask
    workers and subprocesses report to it too (instead of each starting a server of its own)."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
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


@pytest.fixture(autouse=True, scope="session")
def _confined_input_roots(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs read and write only under configured roots (docs/security.md, "Confined inputs"):
    the suite's are pytest's temporary folders, the repo's configs/ and demo contract, the shared
    datasets and the object-storage tests' bucket; subprocesses inherit them."""
    base = tmp_path_factory.getbasetemp().resolve()
    data = [base, REPO_ROOT / "configs", REPO_ROOT / "rlhf_cli" / "examples", SHARED_DATA]
    os.environ["RLHF_WIZARD_DATA_ROOTS"] = os.pathsep.join(str(p) for p in data)
    os.environ["RLHF_WIZARD_OUTPUT_ROOTS"] = os.pathsep.join([str(base), "s3://rlhf-lake"])


@pytest.fixture(autouse=True, scope="session")
def _logging_on_the_real_stderr() -> None:
    """Configure Prefect's logging once, on the real stderr, before any test runs a CLI command.

    Otherwise the first ``CliRunner.invoke`` that imports Prefect binds its console handler to
    the runner's temporary stream, which is closed when the invocation ends, and every later test
    that logs fails with "I/O operation on closed file" (it depends on test order).
    """
    from prefect.logging.configuration import setup_logging

    setup_logging()


@pytest.fixture(autouse=True, scope="session")
def _shared_jax_compilation_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One XLA compilation cache for the session, exported, as a run enables it under its home:
    every CLI subprocess of the suite (cancellation, crash-safety, console tests...) loads the
    programs an earlier one compiled instead of compiling them again."""
    from ops.runtime import enable_compilation_cache

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax-cache"))
    enable_compilation_cache()
