"""Data quality: the YAML suites every lake table is checked against, run by Great Expectations.

Public API (imported lazily)::

    check_table(kind, table, run_id=, max_failure_rate=..., response_ids=None) -> QualityResult
    QualityGateError            # a table failed its suite beyond the threshold
    load_suite(kind) -> tuple[Rule, ...]   # the shipped rules of one table kind (package data)

``gx.py`` is the only module that imports Great Expectations.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "check_table": "rlhf_core.quality.gx",
    "QualityResult": "rlhf_core.quality.gx",
    "QualityGateError": "rlhf_core.quality.gx",
    "load_suite": "rlhf_core.quality.suites",
    "TABLE_KINDS": "rlhf_core.quality.suites",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlhf_core.quality' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
