"""The ``runs`` lake table: one record per run id (flow, contract, parameters, versions, outcome).

Each run's record is a single Parquet file in partition ``run_id=<id>`` of table ``runs``,
replaced atomically by :func:`record_run_start` and :func:`record_run_end`; re-running a run id
overwrites its record (idempotent) and a crash never leaves a half-written record.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from typing import Any

import pyarrow as pa

from rlhf_core.errors import LakeError
from rlhf_core.lake.catalog import RUNS_SCHEMA, Table
from rlhf_core.lake.store import Lake

RUNS_TABLE = Table.RUNS
STATUSES = ("running", "completed", "failed", "cancelled")
END_STATUSES = STATUSES[1:]
TRACKED_PACKAGES = (
    "rlhf-contract-wizard", "jax", "jaxlib", "optax", "prefect", "prefect-dask", "dask",
    "distributed", "duckdb", "pyarrow", "pandas", "numpy", "great-expectations", "cryptography",
    "pydantic",
)

__all__ = [
    "END_STATUSES", "RUNS_SCHEMA", "RUNS_TABLE", "STATUSES", "RunRecord", "get_run", "list_run_records",
    "package_versions", "record_run_end", "record_run_start",
]


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table, with its JSON columns decoded."""

    run_id: str
    flow: str
    started_at: datetime
    status: str = "running"
    contract_hash: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    package_versions: Mapping[str, str] = field(default_factory=dict)
    ended_at: datetime | None = None
    row_counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None

    def to_table(self) -> pa.Table:
        """This record as a one-row table in :data:`RUNS_SCHEMA`."""
        row = {
            "flow": [self.flow],
            "contract_hash": [self.contract_hash],
            "parameters": [_json(self.parameters, "parameters", self.run_id)],
            "package_versions": [_json(self.package_versions, "package_versions", self.run_id)],
            "started_at": [self.started_at],
            "ended_at": [self.ended_at],
            "status": [self.status],
            "row_counts": [_json(self.row_counts, "row_counts", self.run_id)],
            "error": [self.error],
        }
        return pa.table(row, schema=RUNS_SCHEMA)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        """Decode one row (as a dict) read from the ``runs`` table."""
        return cls(
            run_id=row["run_id"], flow=row["flow"], started_at=row["started_at"],
            status=row["status"], contract_hash=row["contract_hash"],
            parameters=json.loads(row["parameters"]),
            package_versions=json.loads(row["package_versions"]),
            ended_at=row["ended_at"], row_counts=json.loads(row["row_counts"]), error=row["error"],
        )


def _json(value: Mapping[str, Any], column: str, run_id: str) -> str:
    try:
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LakeError(f"run {run_id}: {column} is not JSON-serialisable ({exc}); pass plain "
                        "values, e.g. model.model_dump(mode='json')") from exc


def package_versions(packages: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Python and installed package versions (``"not installed"`` for absent ones)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _now() -> datetime:
    return datetime.now(UTC)


def _write(lake: Lake, record: RunRecord) -> RunRecord:
    lake.write_partition(RUNS_TABLE, record.run_id, record.to_table(), RUNS_SCHEMA,
                         metadata={"flow": record.flow, "status": record.status})
    return record


def record_run_start(
    lake: Lake,
    run_id: str,
    flow: str,
    *,
    contract_hash: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
) -> RunRecord:
    """Record that ``flow`` started run ``run_id`` (status ``running``), replacing any old record.

    Args:
        lake: The lake to write to.
        run_id: The run id (partition value in every table the run writes).
        flow: Flow name, e.g. ``score-responses``.
        contract_hash: Hash of the contract the run enforces, if any.
        parameters: The flow's parameters (JSON-serialisable).
        started_at: Start time (timezone-aware); now by default.

    Returns:
        The record written.
    """
    record = RunRecord(run_id=run_id, flow=flow, started_at=started_at or _now(),
                       contract_hash=contract_hash, parameters=dict(parameters or {}),
                       package_versions=package_versions())
    return _write(lake, record)


def record_run_end(
    lake: Lake,
    run_id: str,
    status: str = "completed",
    *,
    row_counts: Mapping[str, int] | None = None,
    error: str | None = None,
    ended_at: datetime | None = None,
) -> RunRecord:
    """Record the outcome of a started run.

    Args:
        lake: The lake.
        run_id: A run id previously passed to :func:`record_run_start`.
        status: ``completed``, ``failed`` or ``cancelled`` (SIGINT / SIGTERM / a cancel).
        row_counts: Rows per table or stage, e.g. ``{"ingested": 10, "quarantined": 1}``.
        error: One-line error message for failed runs.
        ended_at: End time (timezone-aware); now by default.

    Returns:
        The updated record.

    Raises:
        LakeError: If the status is unknown or the run was never started.
    """
    if status not in END_STATUSES:
        raise LakeError(f"run {run_id}: end status must be one of {', '.join(END_STATUSES)}, "
                        f"got {status!r}")
    started = get_run(lake, run_id)
    record = replace(started, status=status, ended_at=ended_at or _now(),
                     row_counts={k: int(v) for k, v in (row_counts or {}).items()}, error=error)
    return _write(lake, record)


def get_run(lake: Lake, run_id: str) -> RunRecord:
    """The record of run ``run_id``.

    Raises:
        LakeError: If the run has no record (it was never started in this lake).
    """
    if not lake.part_paths(RUNS_TABLE, run_id):
        raise LakeError(f"run {run_id} has no record in {lake.table_path(RUNS_TABLE)}; "
                        "call record_run_start first or check the run id and RLHF_WIZARD_HOME")
    rows = lake.read_table(RUNS_TABLE, run_id).to_pylist()
    return RunRecord.from_row(rows[0])


def list_run_records(lake: Lake) -> list[RunRecord]:
    """All run records in the lake, oldest start first."""
    if not lake.list_runs(RUNS_TABLE):
        return []
    rows = lake.read_table(RUNS_TABLE).to_pylist()
    return sorted((RunRecord.from_row(r) for r in rows), key=lambda r: (r.started_at, r.run_id))
