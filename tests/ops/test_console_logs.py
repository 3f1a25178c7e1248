"""A quiet console: Dask (distributed) and Great Expectations INFO logs only with ``--verbose``."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.runtime import VERBOSE_ENV, quiet_library_logs
from rlhf_cli.main import app
from rlhf_core.ingest.generator import write_synthetic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONTRACT = REPO_ROOT / "configs" / "contracts" / "demo.yaml"

# An INFO record of either library, in Prefect's console format ("12:00:00.000 | INFO    |
# distributed.scheduler - ...") or in Dask's own ("... - distributed.worker - INFO - ...").
LIBRARY_INFO = re.compile(r"INFO\s*\|\s*(distributed|great_expectations)\b"
                          r"|\b(distributed|great_expectations)(\.\S+)? - INFO\b")
DISTRIBUTED_INFO = re.compile(r"INFO\s*\|\s*distributed\.\S+ - |\bdistributed\.\S+ - INFO\b")
GX_INFO = re.compile(r"INFO\s*\|\s*great_expectations\b")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture()
def handlers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StringIO, _Collect]]:
    """A Prefect console handler (into a buffer) and a plain handler, both on the root logger."""
    from prefect.logging.handlers import PrefectConsoleHandler

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    stream = StringIO()
    console, other = PrefectConsoleHandler(stream=stream), _Collect()
    root = logging.getLogger()
    loggers = ("distributed.scheduler", "great_expectations.data_context", "rlhf_test.other",
               "distributedish")
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.INFO)
    root.addHandler(console)
    root.addHandler(other)
    try:
        yield stream, other
    finally:
        root.removeHandler(console)
        root.removeHandler(other)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        quiet_library_logs()


def _log_all() -> None:
    logging.getLogger("distributed.scheduler").info("scheduler-info")
    logging.getLogger("distributed.scheduler").warning("scheduler-warning")
    logging.getLogger("great_expectations.data_context").info("gx-info")
    logging.getLogger("rlhf_test.other").info("other-info")
    logging.getLogger("distributedish").info("lookalike-info")


def test_library_info_stays_off_the_console_but_reaches_other_handlers(handlers) -> None:
    stream, other = handlers
    quiet_library_logs()
    quiet_library_logs()  # idempotent
    _log_all()
    console = stream.getvalue()
    assert "scheduler-info" not in console and "gx-info" not in console
    assert "scheduler-warning" in console
    assert "other-info" in console and "lookalike-info" in console
    # Levels are untouched: every other handler still receives the INFO records.
    assert [r.getMessage() for r in other.records] == [
        "scheduler-info", "scheduler-warning", "gx-info", "other-info", "lookalike-info"]


def test_verbose_lets_library_info_through(handlers, monkeypatch: pytest.MonkeyPatch) -> None:
    stream, _ = handlers
    quiet_library_logs()
    monkeypatch.setenv(VERBOSE_ENV, "1")
    quiet_library_logs()
    _log_all()
    console = stream.getvalue()
    assert "scheduler-info" in console and "gx-info" in console


@pytest.mark.parametrize("command", ["run", "demo", "fit", "optimize", "serve"])
def test_commands_that_start_runs_accept_verbose(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--verbose" in result.stdout


@pytest.mark.parametrize("args", [["--verbose", "serve", "--list", "--json"],
                                  ["serve", "--list", "--json", "--verbose"]])
def test_verbose_option_sets_the_environment_for_child_processes(
        args: list[str], wizard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert os.environ.get(VERBOSE_ENV) == "1"


def _cli_run(args: list[str], home: Path, data: Path, preset: Path, run_id: str) -> str:
    env = {**os.environ, "RLHF_WIZARD_HOME": str(home), "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop(VERBOSE_ENV, None)
    cli = str(Path(sys.executable).with_name("rlhf-wizard"))
    done = subprocess.run(
        [cli, "run", "--contract", str(DEMO_CONTRACT), "--data", str(data), "--config", str(preset),
         "--run-id", run_id, *args],
        env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=540,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_run_console_is_quiet_unless_verbose(prefect_harness, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_synthetic(data, 800, seed=3)
    preset = tmp_path / "preset.yaml"
    preset.write_text("dask: {n_workers: 1}\n")
    home = tmp_path / "home"
    home.mkdir()

    quiet = _cli_run([], home, data, preset, "quiet-1")
    noisy = [line for line in quiet.splitlines() if LIBRARY_INFO.search(line)]
    assert not noisy, "library INFO lines on the console:\n" + "\n".join(noisy[:20])
    assert "Run quiet-1" in quiet

    verbose = _cli_run(["--verbose"], home, data, preset, "verbose-1")
    assert DISTRIBUTED_INFO.search(verbose), verbose[-3000:]
    assert GX_INFO.search(verbose), verbose[-3000:]
    assert "Run verbose-1" in verbose
