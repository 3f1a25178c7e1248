"""Run bookkeeping tasks: the ``runs`` table, audit entries, warehouse views."""

from __future__ import annotations

from typing import Any

from prefect import task

from ops.lake_secret import export_lake_passphrase
from rlhf_core.lake.runs import record_run_end, record_run_start
from rlhf_core.lake.store import Lake
from rlhf_core.lake.warehouse import Warehouse
from rlhf_core.security.audit import AuditLog
from tasks.policies import IO_RETRY_OPTIONS


@task(name="start-run", **IO_RETRY_OPTIONS)
def start_run(run_id: str, flow: str, lake_root: str, parameters: dict[str, Any],
              contract_hash: str | None = None) -> None:
    """Record the run as started and audit it (first taking the lake passphrase from its Secret
    block when one is configured, so every later task and Dask worker of the run has it)."""
    export_lake_passphrase()
    lake = Lake(lake_root)
    record_run_start(lake, run_id, flow, contract_hash=contract_hash, parameters=parameters)
    AuditLog(lake).append("run_started", run_id, {"flow": flow, "contract_hash": contract_hash})


@task(name="finish-run", **IO_RETRY_OPTIONS)
def finish_run(run_id: str, lake_root: str, status: str, row_counts: dict[str, int],
               error: str | None = None) -> None:
    """Record the run's outcome, audit it and refresh the warehouse views."""
    record_run_outcome(run_id, lake_root, status, row_counts, error)


def record_run_outcome(run_id: str, lake_root: str, status: str, row_counts: dict[str, int],
                       error: str | None = None) -> None:
    """:func:`finish_run` without Prefect: what a failing or cancelled flow calls on its way
    out, when the engine may no longer run tasks (a SIGTERM is being handled)."""
    lake = Lake(lake_root)
    record_run_end(lake, run_id, status, row_counts=row_counts, error=error)
    AuditLog(lake).append("run_finished", run_id, {"status": status, "row_counts": row_counts,
                                                   "error": error})
    Warehouse(lake).refresh_views()
