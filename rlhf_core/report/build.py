"""Build a run's report: collect from the lake, render, write ``reports/<run_id>/report.html`` atomically."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from rlhf_core.errors import LakeError
from rlhf_core.lake.runs import list_run_records
from rlhf_core.lake.store import Lake, check_run_id
from rlhf_core.report.collect import RunReportData, collect_run
from rlhf_core.report.render import render_html
from rlhf_core.security.audit import AuditLog

REPORT_NAME = "report.html"


def report_relpath(run_id: str) -> str:
    """Where a run's report lives, relative to the lake root."""
    return f"reports/{check_run_id(run_id)}/{REPORT_NAME}"


def latest_run_id(lake: Lake, flow: str | None = "contract-pipeline") -> str:
    """The most recently started completed run (of ``flow``; any flow when None).

    Raises:
        LakeError: If the lake holds no such run.
    """
    runs = [r for r in list_run_records(lake)
            if r.status == "completed" and (flow is None or r.flow == flow)]
    if not runs:
        raise LakeError(f"no completed {flow or 'any'} run in {lake.root}; run `rlhf-wizard demo` or "
                        "`rlhf-wizard run` first, or pass a run id")
    return runs[-1].run_id


@dataclass(frozen=True)
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes:
        run_id: The run.
        path: Full path of the HTML file on the lake's filesystem.
        bytes: Size of the page.
        sha256: Hex SHA-256 of the page (what the audit log records).
        seconds: Wall time of collect + render + write.
        sections: Which optional sections had data (``pareto``, ``policy``, ``pairs``, ``plan``).
        data: The collected data (for summaries).
    """

    run_id: str
    path: str
    bytes: int
    sha256: str
    seconds: float
    sections: dict[str, bool]
    data: RunReportData


def build_report(lake: Lake, run_id: str, *, audit: bool = True) -> ReportResult:
    """Render the self-contained HTML report of run ``run_id`` into the lake.

    Args:
        lake: The lake the run wrote to.
        run_id: The run.
        audit: Append a ``report_written`` audit entry (path, SHA-256, size), so a reviewer can
            tell the page they were sent is the one the lake wrote.

    Returns:
        Where the report was written and what it contains.

    Raises:
        LakeError: If the run is unknown in this lake or a stored artifact is unreadable.
    """
    started = time.perf_counter()
    data = collect_run(lake, run_id)
    html = render_html(data).encode("utf-8")
    path = lake.write_file_atomic(report_relpath(run_id), html)
    digest = hashlib.sha256(html).hexdigest()
    if audit:
        AuditLog(lake).append("report_written", run_id, {"path": path, "sha256": digest, "bytes": len(html)})
    sections = {"pareto": data.pareto is not None, "policy": data.policy is not None,
                "pairs": data.pairs is not None, "plan": data.plan is not None,
                "agreement": data.agreement is not None}
    return ReportResult(run_id, path, len(html), digest, time.perf_counter() - started, sections, data)


def report_markdown(result: ReportResult) -> str:
    """A short Markdown note for Prefect pointing at the report file and its headline numbers."""
    d = result.data
    lines = [f"# Report of run `{result.run_id}`", "", f"HTML report: `{result.path}` "
             f"({result.bytes / 1024:.0f} KiB, built in {result.seconds:.1f} s)", ""]
    if d.contract:
        approved = ", ".join(d.contract.approved_by) if d.contract.approved else "NOT approved"
        lines.append(f"- contract `{d.contract.name}` `{d.contract.hash}`: {approved}")
    if d.stats:
        lines.append(f"- {d.stats['rows']} scored, mean reward {d.stats['reward']['mean']:.4g}, "
                     f"veto rate {d.stats['veto_rate']:.2%}")
    if d.length and d.length.spearman is not None:
        lines.append(f"- reward vs length: Spearman {d.length.spearman:+.3f}, Pearson "
                     f"{(d.length.pearson or 0.0):+.3f}")
    quarantined = sum(q["rows"] for q in d.quarantine)
    lines.append(f"- quarantined rows: {quarantined}")
    for name, present in result.sections.items():
        lines.append(f"- {name}: {'included' if present else 'not computed for this run'}")
    return "\n".join(lines) + "\n"
