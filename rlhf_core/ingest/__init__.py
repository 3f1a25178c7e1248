"""Ingest: dataset adapters, the quality gate and the one write path into the lake.

Public API (imported lazily)::

    read_source(source, run_id=, adapter=None, mapping=None) -> IngestResult
    write_ingest(lake, run_id, result, max_failure_rate=0.05, part_rows=250_000) -> WrittenIngest
    gate_ingest(result, run_id=, max_failure_rate=0.05) -> GatedIngest   # raises IngestGateError
    generate_table(...), write_synthetic(...)                           # the demo's generator
"""

from __future__ import annotations

from rlhf_core.lazy import lazy_exports

_EXPORTS = {
    "read_source": "rlhf_core.ingest.write",
    "write_ingest": "rlhf_core.ingest.write",
    "WrittenIngest": "rlhf_core.ingest.write",
    "gate_ingest": "rlhf_core.ingest.gate",
    "GatedIngest": "rlhf_core.ingest.gate",
    "IngestGateError": "rlhf_core.ingest.gate",
    "IngestResult": "rlhf_core.ingest.adapters.base",
    "generate_table": "rlhf_core.ingest.generator",
    "write_synthetic": "rlhf_core.ingest.generator",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
