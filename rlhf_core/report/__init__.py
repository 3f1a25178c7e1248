"""Run reports: Markdown summaries for Prefect and the self-contained HTML report of a run.

Public API::

    build_report(lake, run_id) -> ReportResult      # writes reports/<run_id>/report.html
    report_relpath(run_id) -> str
    latest_run_id(lake, flow='contract-pipeline') -> str  # for scheduled reports
    report_markdown(result) -> str                   # Prefect artifact text
    collect_run(lake, run_id) -> RunReportData       # the aggregates the page shows
    render_html(data) -> str
"""

from rlhf_core.report.build import (
    ReportResult,
    build_report,
    latest_run_id,
    report_markdown,
    report_relpath,
)
from rlhf_core.report.collect import RunReportData, collect_run
from rlhf_core.report.render import render_html

__all__ = ["ReportResult", "RunReportData", "build_report", "collect_run", "latest_run_id",
           "render_html", "report_markdown", "report_relpath"]
