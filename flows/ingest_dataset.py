"""Flow ``ingest-dataset``: a source file through its adapter and the quality gates into the lake."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ops.access import guard
from ops.confinement import confined
from tasks.ingest import ingest_source


class IngestDatasetParams(BaseModel):
    """Parameters of ``ingest-dataset``.

    Attributes:
        source: Data file or directory (JSONL / CSV / Parquet).
        adapter: Built-in adapter (helpsteer, pku_saferlhf, ultrafeedback, hh_rlhf, generic); None
            with no mapping reads normalised responses Parquet (the generator's output).
        mapping: Mapping file for the generic adapter.
        split: Split of a Hugging Face dataset folder read through ``mapping`` (None: the
            mapping's own, else ``train``).
        run_id: Run id of the partitions written.
        lake_root: Lake root.
        max_failure_rate: Stop when more than this share of rows fails the quality gates.
        part_rows: Rows per ``responses`` part file (prompts are never split).
        contract: Contract YAML whose inputs' ``on_null`` policy the gate applies (None: none).
        token: Run token (``rlhf-wizard access token``); needed once an access policy is
            installed (docs/security.md). Shown to anyone who can read the run's parameters:
            prefer ``token_block`` for schedules.
        token_block: Name of a Prefect ``Secret`` block holding the run token.
    """

    model_config = ConfigDict(extra="forbid")

    source: str
    adapter: str | None = None
    mapping: str | None = None
    split: str | None = None
    run_id: str
    lake_root: str = ".wizard"
    max_failure_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    part_rows: int = Field(default=250_000, ge=1)
    contract: str | None = None
    token: SecretStr | None = None
    token_block: str | None = None


@flow(name="ingest-dataset", log_prints=True)
def ingest_dataset(params: IngestDatasetParams) -> dict:
    """Adapter -> quality gates (quarantine) -> lake tables, rows conserved."""
    params = confined(params, "ingest-dataset", data=("source", "mapping", "contract"))
    guard(params, "run")
    return ingest_source(
        params.source, params.adapter, params.mapping, params.run_id, params.lake_root,
        params.max_failure_rate, params.part_rows, params.contract, split=params.split,
    )
