"""Lazy re-exports for package ``__init__`` modules: a curated API without import-time cost.

A package lists what it exports and where each name lives; the name's module is imported on
first attribute access (PEP 562), so ``import rlhf_core.lake`` does not pull in DuckDB and
``import rlhf_core.planner`` does not pull in JAX until something from them is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module-level ``__getattr__`` resolving ``exports`` (name -> module) on use, and ``__all__``.

    Usage in a package's ``__init__``::

        __getattr__, __all__ = lazy_exports(__name__, {"Lake": "rlhf_core.lake.store", ...})
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__, sorted(exports)
