"""Ingest task: source file -> adapter -> quality gates -> lake (responses, preferences, quarantine)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from rlhf_core.errors import DataError
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
        Row counts (``rows_in`` = ``accepted`` + ``quarantined``, checked), quarantine counts by
        rule, and the paths of the ``responses`` parts.

    Raises:
        DataQualityError: The failure rate exceeds ``max_failure_rate``.
        DataError: Rows were not conserved (a bug) or the source cannot be read.
    """
    from rlhf_core.io.adapters import ingest

    if adapter is None and mapping is None:
        result = read_native_responses(source, run_id=run_id)
    else:
        result = ingest(source, run_id=run_id, adapter=adapter, mapping=mapping)
    responses = check_table("responses", result.responses, run_id=run_id,
                            max_failure_rate=max_failure_rate)
    preferences = check_table("preferences", result.preferences, run_id=run_id,
                              max_failure_rate=max_failure_rate,
                              response_ids=responses.accepted.column("response_id").to_pylist())
    quarantine = pa.concat_tables(
        [t.cast(QUARANTINE_SCHEMA) for t in (result.quarantine, responses.quarantined, preferences.quarantined)]
    )
    accepted = responses.accepted.sort_by([("prompt_id", "ascending"), ("response_id", "ascending")])
    levels = {
        "source rows": (result.rows_read, result.rows_accepted, result.quarantine.num_rows),
        "responses": (result.responses.num_rows, responses.accepted.num_rows, responses.quarantined.num_rows),
        "preferences": (result.preferences.num_rows, preferences.accepted.num_rows,
                        preferences.quarantined.num_rows),
    }
    for level, (rows_in, kept, dropped) in levels.items():
        if rows_in != kept + dropped:
            raise DataError(f"run {run_id}: {level} of {source} not conserved: {rows_in} in, {kept} "
                            f"accepted + {dropped} quarantined; this is a bug, please report it")
    check_table("quarantine", quarantine, run_id=run_id, max_failure_rate=0.0)
    lake = Lake(lake_root)
    lake.discard_staging("responses", run_id)
    parts = _prompt_aligned_parts(accepted, part_rows)
    for index, part in enumerate(parts):
        lake.write_part("responses", run_id, part, accepted.schema, part=index, staged=True)
    paths = lake.commit_partition("responses", run_id, expected_parts=len(parts))
    lake.write_partition("preferences", run_id, preferences.accepted, preferences.accepted.schema)
    lake.write_partition("quarantine", run_id, quarantine, QUARANTINE_SCHEMA)
    lake.write_file_atomic(
        f"artifacts/{run_id}/quality-ingest.json",
        json.dumps({"responses": responses.suite_result, "preferences": preferences.suite_result,
                    "source_quarantined": result.quarantine.num_rows}, default=str, indent=2).encode(),
    )
    reasons = Counter(pc.fill_null(quarantine.column("rule"), "?").to_pylist())
    return {
        "source": source,
        "conservation": {k: dict(zip(("in", "accepted", "quarantined"), v, strict=True)) for k, v in levels.items()},
        "rows_in": result.responses.num_rows + result.quarantine.num_rows,
        "accepted": accepted.num_rows,
        "quarantined": result.quarantine.num_rows + responses.quarantined.num_rows,
        "preferences": preferences.accepted.num_rows,
        "quarantine_reasons": dict(reasons),
        "response_paths": paths,
    }
