"""Ingest task: source file -> adapter -> quality gate -> lake (responses, preferences, quarantine)."""

from __future__ import annotations

from typing import Any

from prefect import task

from rlhf_core.ingest.write import read_source, write_ingest
from rlhf_core.lake.store import Lake
from tasks.policies import IO_RETRY_OPTIONS


@task(name="ingest-source", **IO_RETRY_OPTIONS)
def ingest_source(
    source: str,
    adapter: str | None,
    mapping: str | None,
    run_id: str,
    lake_root: str,
    max_failure_rate: float,
    part_rows: int,
    contract: str | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """Read ``source``, quarantine bad rows, write the accepted tables to the lake.

    With ``contract``, its inputs' null policy applies too (rows missing a contract input are
    quarantined with ``missing_contract_input``, filled with the declared default, or vetoed).
    ``split`` picks the split of a Hugging Face dataset folder read through ``mapping``.

    Returns:
        Row counts (``rows_in`` = ``accepted`` + ``quarantined``; every stage's conservation is
        checked by the gate), quarantine counts by rule, and the ``responses`` part paths.

    Raises:
        IngestGateError: The failure rate exceeds ``max_failure_rate`` (the quarantined rows are
            written to the lake first, so nothing is lost).
    """
    nulls = []
    if contract is not None:
        from rlhf_core.contract import load_contract
        from rlhf_core.ingest.nulls import null_inputs

        nulls = null_inputs(load_contract(contract).program)
    result = read_source(source, run_id=run_id, adapter=adapter, mapping=mapping, split=split)
    written = write_ingest(Lake(lake_root), run_id, result, max_failure_rate=max_failure_rate,
                           part_rows=part_rows, null_inputs=nulls)
    counts = written.counts()
    counts.pop("duplicates")
    return {"source": source, **counts, "response_paths": written.response_paths}
