"""The one write path of an ingest: adapter output -> quality gate -> lake.

The ``ingest-source`` task and ``rlhf-wizard data ingest`` both call :func:`write_ingest`, so an
ingest lands the same way whichever started it:

* ``responses``: accepted rows sorted by prompt and response id, split into parts of about
  ``part_rows`` rows that never cut a prompt, staged and committed at once;
* ``preferences``: accepted pairs, one partition;
* ``quarantine``: every quarantined row (source, responses, preferences), cast to the catalog's
  schema and checked by its own suite — written even when the gate fails, so nothing is lost;
* the gate's summary: ``artifacts/<run_id>/quality-ingest.json``.

Re-running a run id replaces its partitions (each commit is atomic).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters.base import IngestResult
from rlhf_core.ingest.gate import GatedIngest, IngestGateError, gate_ingest
from rlhf_core.ingest.nulls import NullInput
from rlhf_core.ingest.raw_cap import cap_records
from rlhf_core.lake.catalog import QUARANTINE_SCHEMA, Table
from rlhf_core.lake.store import Lake
from rlhf_core.quality.gx import check_table

DEFAULT_PART_ROWS = 250_000
"""Rows per ``responses`` part file (prompts are never split across parts)."""

__all__ = ["DEFAULT_PART_ROWS", "WrittenIngest", "prompt_aligned_parts", "quality_report_path",
           "read_source", "write_ingest", "write_quarantine"]


@dataclass(frozen=True)
class WrittenIngest:
    """What :func:`write_ingest` wrote.

    Attributes:
        run_id: The ingest's run id.
        result: The adapter's output (before the gate).
        gated: The gate's accepted tables, quarantine and summary.
        response_paths: The committed ``responses`` part files, in part order.
        paths: Where each table and the quality report went.
    """

    run_id: str
    result: IngestResult
    gated: GatedIngest
    response_paths: list[str]
    paths: dict[str, str]

    def counts(self) -> dict[str, Any]:
        """Row counts: ``rows_in`` = ``accepted`` + ``quarantined`` (responses), plus pairs,
        accepted rows vetoed for a null contract input (``null_vetoed``, see
        :mod:`rlhf_core.ingest.nulls`) and quarantine reasons by rule."""
        quarantine = self.gated.quarantine
        reasons = Counter(pc.fill_null(quarantine.column("rule"), "?").to_pylist())
        return {
            "source_rows": self.gated.summary["source_rows"],
            "rows_in": self.result.responses.num_rows + self.result.rows_quarantined,
            "accepted": self.gated.responses.num_rows,
            "quarantined": (self.result.rows_quarantined
                            + self.gated.summary["responses"]["quarantined"]
                            + self.gated.summary["contract_nulls"]["quarantined"]),
            "preferences": self.gated.preferences.num_rows,
            "null_vetoed": self.gated.summary["contract_nulls"]["vetoed_rows"],
            "quarantined_total": quarantine.num_rows,
            "quarantine_reasons": dict(reasons),
            "duplicates": self.result.duplicates,
        }


def quality_report_path(run_id: str) -> str:
    """Lake-relative path of an ingest's quality summary (JSON)."""
    return f"artifacts/{run_id}/quality-ingest.json"


def read_source(source: str | Path, *, run_id: str, adapter: str | None = None,
                mapping: Any = None, split: str | None = None) -> IngestResult:
    """Read a source with an adapter, a mapping, or — with neither — as normalised Parquet.

    ``mapping`` is a mapping file or a loaded ``Mapping``; ``split`` overrides its split of a
    Hugging Face dataset folder.

    Raises:
        DataError: ``split`` without a mapping, or what the adapter raises.
    """
    if split is not None:
        if mapping is None:
            raise DataError("--split applies to a mapping with format: huggingface; add "
                            "--mapping FILE")
        from rlhf_core.ingest.adapters.mapping import Mapping, load_mapping

        loaded = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
        mapping = loaded.model_copy(update={"split": split})
    if adapter is None and mapping is None:
        from rlhf_core.ingest.native import read_native_responses

        return read_native_responses(source, run_id=run_id)
    from rlhf_core.ingest.adapters import ingest

    return ingest(source, run_id=run_id, adapter=adapter, mapping=mapping)


def prompt_aligned_parts(table: pa.Table, rows: int) -> list[pa.Table]:
    """Split a prompt-sorted table into parts of about ``rows`` rows without cutting a prompt.

    A part ends at the first prompt boundary at or after ``rows`` rows, so it holds at least one
    row and there are at most ``table.num_rows`` parts.

    Raises:
        ValueError: ``rows < 1`` (no part could ever end).
    """
    if rows < 1:
        raise ValueError(f"part_rows must be at least 1, got {rows}")
    n = table.num_rows
    if n <= rows:
        return [table]
    ids = table.column("prompt_id")
    changed = pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    boundaries = np.append(np.flatnonzero(changed) + 1, n)  # where each prompt after the first starts
    parts, start = [], 0
    for _ in range(n):
        if start >= n:
            break
        stop = int(boundaries[np.searchsorted(boundaries, min(start + rows, n))])
        parts.append(table.slice(start, stop - start))
        start = stop
    return parts


def sorted_by_prompt(table: pa.Table) -> bool:
    """Whether rows are in (``prompt_id``, ``response_id``) order already (one vectorised pass,
    cheaper than the sort it saves)."""
    n = table.num_rows
    if n < 2:
        return True
    prompt, response = table.column("prompt_id"), table.column("response_id")
    p0, p1 = prompt.slice(0, n - 1), prompt.slice(1)
    ordered = pc.or_(pc.less(p0, p1), pc.and_(pc.equal(p0, p1),
                                              pc.less_equal(response.slice(0, n - 1),
                                                            response.slice(1))))
    return bool(pc.all(pc.fill_null(ordered, False)).as_py())


def write_quarantine(lake: Lake, run_id: str, quarantine: pa.Table) -> str:
    """Cast ``quarantine`` to the catalog's schema, cap its raw records
    (:mod:`rlhf_core.ingest.raw_cap`), check it, and write the run's partition."""
    quarantine = cap_records(quarantine.cast(QUARANTINE_SCHEMA))
    check_table(Table.QUARANTINE, quarantine, run_id=run_id, max_failure_rate=0.0)
    return lake.write_partition(Table.QUARANTINE, run_id, quarantine, QUARANTINE_SCHEMA)


def write_ingest(lake: Lake, run_id: str, result: IngestResult, *, max_failure_rate: float = 0.05,
                 part_rows: int = DEFAULT_PART_ROWS,
                 null_inputs: Sequence[NullInput] = ()) -> WrittenIngest:
    """Gate an adapter's output and write every table of the ingest to the lake.

    Args:
        lake: The lake.
        run_id: The ingest's run id (its partition in every table).
        result: What an adapter (or the native reader) returned.
        max_failure_rate: Highest tolerated failing fraction per gate stage, in [0, 1].
        part_rows: Rows per ``responses`` part (>= 1).
        null_inputs: The contract's null policy (see :func:`gate_ingest`); none: no contract.

    Returns:
        What was written.

    Raises:
        IngestGateError: A gate stage failed; its quarantine rows were written first.
        ValueError: ``part_rows < 1``.
    """
    if part_rows < 1:
        raise ValueError(f"part_rows must be at least 1, got {part_rows}")
    try:
        gated = gate_ingest(result, run_id=run_id, max_failure_rate=max_failure_rate,
                            null_inputs=null_inputs)
    except IngestGateError as exc:
        write_quarantine(lake, run_id, exc.quarantine)
        raise
    accepted = gated.responses
    if not sorted_by_prompt(accepted):  # generated and re-ingested lake data already are
        accepted = accepted.sort_by([("prompt_id", "ascending"), ("response_id", "ascending")])
    gated = GatedIngest(accepted, gated.preferences, gated.quarantine, gated.rows_read,
                        gated.summary)
    lake.discard_staging(Table.RESPONSES, run_id)
    parts = prompt_aligned_parts(accepted, part_rows)
    for index, part in enumerate(parts):
        lake.write_part(Table.RESPONSES, run_id, part, accepted.schema, part=index, staged=True)
    # URIs on object storage: the next tasks open them on other hosts, without this lake object.
    response_paths = [lake.uri(p) for p in
                      lake.commit_partition(Table.RESPONSES, run_id, expected_parts=len(parts))]
    paths = {
        "responses": lake.partition_path(Table.RESPONSES, run_id),
        "preferences": lake.write_partition(Table.PREFERENCES, run_id, gated.preferences,
                                            gated.preferences.schema),
        "quarantine": write_quarantine(lake, run_id, gated.quarantine),
        "quality_report": lake.write_file_atomic(
            quality_report_path(run_id),
            json.dumps(gated.summary, default=str, indent=2).encode("utf-8")),
    }
    return WrittenIngest(run_id, result, gated, response_paths, paths)
