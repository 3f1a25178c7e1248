"""The lake: run-partitioned Parquet tables with atomic commits, the run records and the warehouse.

Public API (imported lazily)::

    Lake(root=None)                         # store.py: write_part / commit_partition / read_run ...
    Table, TableSpec, TABLES, spec(table)   # catalog.py: every table once (schema, suite, writer)
    record_run_start / record_run_end / get_run / list_run_records   # runs.py
    Warehouse(lake)                         # warehouse.py: DuckDB views over the lake
    TEXT_COLUMNS                            # text_columns.py: what encryption at rest covers
                                            # (encryption.py, keyfile.py, rotation.py: `keys ...`)
    check_run_id(run_id), check_table_name(table)
"""

from __future__ import annotations

from rlhf_core.lazy import lazy_exports

_EXPORTS = {
    "Lake": "rlhf_core.lake.store",
    "Table": "rlhf_core.lake.catalog",
    "TableSpec": "rlhf_core.lake.catalog",
    "TABLES": "rlhf_core.lake.catalog",
    "spec": "rlhf_core.lake.catalog",
    "RunRecord": "rlhf_core.lake.runs",
    "record_run_start": "rlhf_core.lake.runs",
    "record_run_end": "rlhf_core.lake.runs",
    "get_run": "rlhf_core.lake.runs",
    "list_run_records": "rlhf_core.lake.runs",
    "Warehouse": "rlhf_core.lake.warehouse",
    "TEXT_COLUMNS": "rlhf_core.lake.text_columns",
    "check_run_id": "rlhf_core.lake.names",
    "check_table_name": "rlhf_core.lake.names",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
