"""Report task: render a run's HTML report into the lake and point Prefect artifacts at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from rlhf_core.lake.store import Lake
from rlhf_core.report import build_report, latest_run_id, report_markdown
from tasks.policies import IO_RETRY_OPTIONS


def _key(run_id: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    safe = "".join(c if c.isalnum() else "-" for c in run_id.lower()).strip("-")
    return f"{what}-{safe}"[:100]


def _link(path: str, lake: Lake) -> str:
    """A file:// URL for a local lake, the lake path otherwise."""
    return Path(path).resolve().as_uri() if isinstance(lake.fs, pafs.LocalFileSystem) else path


@task(name="build-run-report", **IO_RETRY_OPTIONS)
def build_run_report(run_id: str | None, lake_root: str) -> dict[str, Any]:
    """Write (and audit) ``reports/<run_id>/report.html``; publish link, Markdown and table artifacts.

    Args:
        run_id: The run; None reports on the latest completed ``contract-pipeline`` run.
        lake_root: Lake root.

    Returns:
        ``{"run_id", "path", "url", "bytes", "seconds", "sections"}``.
    """
    lake = Lake(lake_root)
    run_id = run_id or latest_run_id(lake)
    result = build_report(lake, run_id)
    url = _link(result.path, lake)
    create_link_artifact(link=url, link_text=f"HTML report of run {run_id}", key=_key(run_id, "report-link"),
                         description=f"Self-contained HTML report of run {run_id}")
    create_markdown_artifact(markdown=report_markdown(result), key=_key(run_id, "report"),
                             description=f"Report of run {run_id}")
    rows = [{"section": name, "status": "included" if present else "not computed for this run"}
            for name, present in result.sections.items()]
    create_table_artifact(table=rows, key=_key(run_id, "report-sections"),
                          description=f"Optional report sections of run {run_id}")
    return {"run_id": run_id, "path": result.path, "url": url, "bytes": result.bytes,
            "sha256": result.sha256, "seconds": round(result.seconds, 3), "sections": result.sections}
