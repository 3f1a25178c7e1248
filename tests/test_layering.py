"""The library layer never imports the orchestration layer (checked, not hoped for)."""

from __future__ import annotations

import ast
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
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.add(("<dynamic __import__>", node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            found.add(("<importlib.import_module>", node.lineno))
    return found


def test_rlhf_core_never_imports_orchestration() -> None:
    files = sorted((REPO_ROOT / "rlhf_core").rglob("*.py"))
    assert len(files) > 3
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for path in files
        for name, line in _imported_roots(path)
        if name in FORBIDDEN or name.startswith("<")
    ]
    assert offenders == [], "rlhf_core must stay free of Prefect/Dask:\n" + "\n".join(offenders)


def test_walker_detects_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom prefect import flow\nimport dask.dataframe as dd\n")
    assert {name for name, _ in _imported_roots(bad)} >= {"prefect", "dask"}
