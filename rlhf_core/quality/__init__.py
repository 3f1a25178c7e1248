"""Data quality: the YAML suites every lake table is checked against, run by Great Expectations.

Public API (imported lazily)::

    check_table(kind, table, run_id=, max_failure_rate=..., response_ids=None) -> QualityResult
    QualityGateError            # a table failed its suite beyond the threshold
    check_length_bias(chosen_longer, max_share, run_id=) -> dict   # the pairs' length gate
    load_suite(kind) -> tuple[Rule, ...]   # the shipped rules of one table kind (package data)

``gx.py`` is the only module that imports Great Expectations.
"""

from __future__ import annotations

from rlhf_core.lazy import lazy_exports

_EXPORTS = {
    "check_table": "rlhf_core.quality.gx",
    "check_length_bias": "rlhf_core.quality.gx",
    "QualityResult": "rlhf_core.quality.gx",
    "QualityGateError": "rlhf_core.quality.gx",
    "load_suite": "rlhf_core.quality.suites",
    "TABLE_KINDS": "rlhf_core.quality.suites",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
