"""The library layer never imports the orchestration layer (checked, not hoped for).

Two checks: a static walk of every ``import`` in ``rlhf_core/`` and, because lazy re-exports use
``importlib``, a run-time check that importing every module (and touching every lazy export)
leaves no Prefect or Dask module in ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

FORBIDDEN = {"prefect", "prefect_dask", "dask", "distributed", "flows", "tasks", "rlhf_cli"}


def _imported_roots(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = getattr(func, "id", None) or getattr(func, "attr", None)
            if name in {"__import__", "import_module"} and isinstance(node.args[0].value, str):
                found.add((node.args[0].value.split(".")[0], node.lineno))
    return found


def test_rlhf_core_never_imports_orchestration_statically() -> None:
    files = sorted((REPO_ROOT / "rlhf_core").rglob("*.py"))
    assert len(files) > 3
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for path in files
        for name, line in _imported_roots(path)
        if name in FORBIDDEN
    ]
    assert offenders == [], "rlhf_core must stay free of Prefect/Dask:\n" + "\n".join(offenders)


_PROBE = """
import importlib, json, pkgutil, sys
import rlhf_core
for info in pkgutil.walk_packages(rlhf_core.__path__, "rlhf_core."):
    module = importlib.import_module(info.name)
    for name in getattr(module, "__all__", []):
        getattr(module, name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"prefect", "prefect_dask", "dask", "distributed"})
print(json.dumps(bad))
"""


def test_rlhf_core_never_imports_orchestration_at_run_time() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_walker_detects_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom prefect import flow\nimport dask.dataframe as dd\n"
        "import importlib\nimportlib.import_module('distributed')\n"
    )
    assert {name for name, _ in _imported_roots(bad)} >= {"prefect", "dask", "distributed"}


def test_leaf_modules_import_on_their_own() -> None:
    """Modules that other layers import first must not depend on an import order (cycles)."""
    for module in ("rlhf_core.contract.program", "rlhf_core.contract.legal_blocks", "rlhf_core.scoring",
                   "rlhf_core.io.lake", "rlhf_core.optimize", "rlhf_core.planner"):
        out = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"import {module} alone fails:\n{out.stderr[-1500:]}"
