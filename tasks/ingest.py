"""Ingest task: source file -> adapter -> quality gate -> lake (responses, preferences, quarantine)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from rlhf_core.io.gate import IngestGateError, gate_ingest
from rlhf_core.io.ingest_native import read_native_responses
from rlhf_core.io.lake import Lake
from rlhf_core.io.quality import check_table
from rlhf_core.io.schemas import QUARANTINE_SCHEMA
from tasks.policies import IO_RETRY_OPTIONS


def _prompt_aligned_parts(table: pa.Table, rows: int) -> list[pa.Table]:
    """Split a prompt-sorted table into parts of about ``rows`` rows without cutting a prompt."""
    if table.num_rows <= rows:
        return [table]
    ids = table.column("prompt_id")
    parts, start = [], 0
    while start < table.num_rows:
        stop = min(start + rows, table.num_rows)
        while stop < table.num_rows and ids[stop] == ids[stop - 1]:
            stop += 1
        parts.append(table.slice(start, stop - start))
        start = stop
    return parts


def _write_quarantine(lake: Lake, run_id: str, quarantine: pa.Table) -> None:
    quarantine = quarantine.cast(QUARANTINE_SCHEMA)
    check_table("quarantine", quarantine, run_id=run_id, max_failure_rate=0.0)
    lake.write_partition("quarantine", run_id, quarantine, QUARANTINE_SCHEMA)


@task(name="ingest-source", **IO_RETRY_OPTIONS)
def ingest_source(
    source: str,
    adapter: str | None,
    mapping: str | None,
    run_id: str,
    lake_root: str,
    max_failure_rate: float,
    part_rows: int,
) -> dict[str, Any]:
    """Read ``source``, quarantine bad rows, write the accepted tables to the lake.

    Returns:
        Row counts (``rows_in`` = ``accepted`` + ``quarantined``; every stage's conservation is
        checked by the gate), quarantine counts by rule, and the ``responses`` part paths.

    Raises:
        IngestGateError: The failure rate exceeds ``max_failure_rate`` (the quarantined rows are
            written to the lake first, so nothing is lost).
    """
    from rlhf_core.io.adapters import ingest

    if adapter is None and mapping is None:
        result = read_native_responses(source, run_id=run_id)
    else:
        result = ingest(source, run_id=run_id, adapter=adapter, mapping=mapping)
    lake = Lake(lake_root)
    try:
        gated = gate_ingest(result, run_id=run_id, max_failure_rate=max_failure_rate)
    except IngestGateError as exc:
        _write_quarantine(lake, run_id, exc.quarantine)
        raise
    accepted = gated.responses.sort_by([("prompt_id", "ascending"), ("response_id", "ascending")])
    lake.discard_staging("responses", run_id)
    parts = _prompt_aligned_parts(accepted, part_rows)
    for index, part in enumerate(parts):
        lake.write_part("responses", run_id, part, accepted.schema, part=index, staged=True)
    paths = lake.commit_partition("responses", run_id, expected_parts=len(parts))
    lake.write_partition("preferences", run_id, gated.preferences, gated.preferences.schema)
    _write_quarantine(lake, run_id, gated.quarantine)
    lake.write_file_atomic(f"artifacts/{run_id}/quality-ingest.json",
                           json.dumps(gated.summary, default=str, indent=2).encode())
    quarantined_responses = gated.summary["responses"]["quarantined"]
    reasons = Counter(pc.fill_null(gated.quarantine.column("rule"), "?").to_pylist())
    return {
        "source": source,
        "source_rows": gated.summary["source_rows"],
        "rows_in": result.responses.num_rows + result.rows_quarantined,
        "accepted": accepted.num_rows,
        "quarantined": result.rows_quarantined + quarantined_responses,
        "preferences": gated.preferences.num_rows,
        "quarantined_total": gated.quarantine.num_rows,
        "quarantine_reasons": dict(reasons),
        "response_paths": paths,
    }
