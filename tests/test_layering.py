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
                   "rlhf_core.lake.store", "rlhf_core.lake.catalog", "rlhf_core.optimize",
                   "rlhf_core.planner", "rlhf_core.ingest.write", "rlhf_core.security.keys"):
        out = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"import {module} alone fails:\n{out.stderr[-1500:]}"


# --- no import cycles: between packages, and between files --------------------------------------

_TOP_LEVEL = ("rlhf_core", "tasks", "flows", "ops", "rlhf_cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules() -> dict[str, Path]:
    return {_module_name(p): p for top in _TOP_LEVEL for p in (REPO_ROOT / top).rglob("*.py")}


def _import_targets(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports (module-level and local imports alike)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def resolve(name: str) -> None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                resolve(full if full in modules else node.module)
    return found


def _package_of(module: str) -> str:
    """``rlhf_core.<package>`` for library modules, else the top-level package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "rlhf_core" else parts[0]


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a node path (first node repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _project_modules()
    files: dict[str, set[str]] = {}
    packages: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = _import_targets(path, modules) - {name}
        # A package's __init__ re-exporting its own modules is not a dependency between files.
        files[name] = {t for t in targets if not (path.name == "__init__.py" and
                                                  t.startswith(name + "."))}
        src = _package_of(name)
        packages.setdefault(src, set()).update(
            p for p in map(_package_of, targets) if p != src)
    return files, packages


def test_packages_form_a_dag() -> None:
    _, packages = _graphs()
    assert {"rlhf_core.lake", "rlhf_core.ingest", "rlhf_core.security", "ops", "flows"} <= set(packages)
    cycle = _find_cycle(packages)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def test_files_form_a_dag() -> None:
    files, _ = _graphs()
    cycle = _find_cycle(files)
    assert cycle is None, "modules import each other: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_old_io_package_is_gone() -> None:
    assert not (REPO_ROOT / "rlhf_core" / "io").exists()
