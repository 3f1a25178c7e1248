"""Artifact tasks: Markdown summaries and tables published to Prefect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from rlhf_core.report.summary import render_score_summary, score_table_rows
from rlhf_core.scoring.stats import score_stats
from tasks.policies import IO_RETRY_OPTIONS


def _key(run_id: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    safe = "".join(c if c.isalnum() else "-" for c in run_id.lower()).strip("-")
    return f"{what}-{safe}"[:100]


@task(name="publish-score-summary", **IO_RETRY_OPTIONS)
def publish_score_summary(
    run_id: str,
    lake_root: str,
    paths: list[str],
    ingest: Mapping[str, Any] | None = None,
    contract: Mapping[str, Any] | None = None,
    optimization: Mapping[str, Any] | None = None,
    agreement: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Summarise the run's scores into a Markdown and a table artifact; return the stats."""
    stats = score_stats(paths)
    markdown = render_score_summary(run_id, stats, ingest=ingest, contract=contract, paths=paths,
                                    optimization=optimization, agreement=agreement)
    create_markdown_artifact(markdown=markdown, key=_key(run_id, "run-summary"),
                             description=f"Scores of run {run_id}")
    create_table_artifact(table=score_table_rows(stats), key=_key(run_id, "score-stats"),
                          description=f"Score statistics of run {run_id}")
    return {"stats": stats, "summary_markdown": markdown}
