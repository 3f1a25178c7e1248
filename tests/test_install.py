"""The project as a user gets it: a wheel, installed non-editable, run outside the checkout.

The code reads its quality suites, pipeline presets, report template and demo contract as package
data (``importlib.resources``), and the doctor reads the installed distribution's metadata, so none
of it may depend on a source checkout. The slow test builds a wheel from a copy of the sources,
installs it into a fresh venv in ``tmp_path`` (the heavy dependencies come from this environment
through a plain ``.pth`` path line, which does not run this checkout's editable finder), and then,
from ``tmp_path`` with the lake there too, lints a contract and runs the contract pipeline with
the installed ``rlhf-wizard``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from importlib import resources
from pathlib import Path

import pytest

from ops.config import DEFAULT_PRESET, PRESET_DIR, load_pipeline_config
from rlhf_core.quality.suites import SUITE_DIR, TABLE_KINDS, load_suite

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlhf_core", "rlhf_cli", "flows", "tasks", "ops")
CONTRACTS = REPO_ROOT / "configs" / "contracts"
ROWS = 400
RUN_ID = "install-check"


def test_package_data_is_read_through_importlib_resources() -> None:
    assert {f"{kind}.yaml" for kind in TABLE_KINDS} <= {p.name for p in SUITE_DIR.iterdir()}
    assert all(load_suite(kind) for kind in TABLE_KINDS)
    assert {"default.yaml", "kubernetes.yaml", "slurm.yaml"} <= {p.name for p in PRESET_DIR.iterdir()}
    assert load_pipeline_config() == load_pipeline_config(Path(str(DEFAULT_PRESET)))
    assert (resources.files("rlhf_core.report") / "templates" / "report.html.j2").is_file()


def test_shipped_demo_contract_is_the_example() -> None:
    """``rlhf_cli/examples`` ships the demo contract and its approvals for ``rlhf-wizard demo``."""
    shipped = resources.files("rlhf_cli") / "examples"
    for name in ("demo.yaml", "demo.contract.dsse.json"):
        assert (shipped / name).read_bytes() == (CONTRACTS / name).read_bytes(), (
            f"rlhf_cli/examples/{name} differs from configs/contracts/{name}: copy it over")


def _build_wheel(tmp_path: Path) -> Path:
    """A wheel built from a copy of the package sources (no stale ``build/`` of the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)]
    try:  # Build with this environment's setuptools when it reads PEP 639 license strings...
        from packaging.version import Version

        if Version(metadata.version("setuptools")) >= Version("77"):
            command.insert(5, "--no-build-isolation")
    except metadata.PackageNotFoundError:  # ...else pip fetches the build backend it declares.
        pass
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (wheel,) = wheels.glob("rlhf_contract_wizard-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> tuple[Path, Path]:
    """A venv with the wheel installed (no deps) and this environment's site-packages appended."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # A plain path line: it puts this environment's packages on sys.path after the venv's own,
    # without processing that directory's .pth files (so this checkout's editable finder stays off).
    (site / "zz_parent_env.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                           "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return venv, site


@pytest.mark.integration
@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_lints_and_runs(tmp_path: Path) -> None:
    started = time.monotonic()
    venv, site = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    home = work / "wizard-home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "RLHF_WIZARD_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", RLHF_WIZARD_HOME=str(home),
               PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PREFECT_LOGGING_LEVEL="WARNING")

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run(list(args), cwd=work, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    # The installed code, its data and its metadata all come from the fresh venv's site-packages.
    probe = run(str(venv / "bin" / "python"), "-c", (
        "import json, importlib.metadata as m, rlhf_core, rlhf_cli, ops, flows, tasks\n"
        "from rlhf_core.quality.suites import SUITE_DIR\n"
        "from ops.config import DEFAULT_PRESET\n"
        "d = m.distribution('rlhf-contract-wizard')\n"
        "print(json.dumps({'modules': [p.__file__ for p in (rlhf_core, rlhf_cli, ops, flows, tasks)],"
        " 'data': [str(SUITE_DIR), str(DEFAULT_PRESET)],"
        " 'dist': str(d.locate_file('')), 'version': d.version}))"))
    where = json.loads(probe.stdout)
    for path in [*where["modules"], *where["data"]]:
        assert Path(path).is_relative_to(site), f"{path} is not from the installed wheel in {site}"
        assert not Path(path).is_relative_to(REPO_ROOT)
    assert Path(where["dist"]).resolve() == site.resolve()
    assert where["version"] == metadata.version("rlhf-contract-wizard")

    # Inputs go to the lake's incoming folder, a data root with no settings (docs/security.md).
    contract = home / "incoming" / "demo.yaml"
    contract.parent.mkdir(parents=True)
    for name in ("demo.yaml", "demo.contract.dsse.json"):
        shutil.copy2(CONTRACTS / name, contract.parent / name)
    wizard = str(venv / "bin" / "rlhf-wizard")
    lint = json.loads(run(wizard, "contract", "lint", str(contract), "--json").stdout)
    assert lint["ok"] is True, lint

    # The doctor reads the installed distribution's metadata (no pyproject.toml here).
    doctor = json.loads(run(wizard, "doctor", "--json").stdout)
    checks = {c["name"]: c for c in doctor["checks"]}
    assert checks["rlhf-contract-wizard"]["ok"] and str(site) in checks["rlhf-contract-wizard"]["detail"]
    assert checks["packages"]["ok"], [c for c in doctor["checks"] if not c["ok"]]

    data = home / "incoming" / "data"
    run(wizard, "data", "generate", "--rows", str(ROWS), "--out", str(data))
    result = json.loads(run(wizard, "run", "--contract", str(contract), "--data", str(data),
                            "--run-id", RUN_ID, "--workers", "1", "--json", timeout=240).stdout)
    assert result["run_id"] == RUN_ID
    lake = home / "lake"
    for table in ("responses", "scores", "runs"):
        parts = list((lake / table / f"run_id={RUN_ID}").glob("*.parquet"))
        assert parts, f"no {table} partition for {RUN_ID} in {lake}: {sorted(p.name for p in lake.iterdir())}"
    assert result.get("report") and Path(result["report"]).is_file()  # the packaged template rendered
    print(f"\ninstall test: {time.monotonic() - started:.1f} s")
