"""Reports of runs without scores: a failed run, and an unknown run id (no Prefect needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf_core.errors import LakeError
from rlhf_core.lake.runs import record_run_end, record_run_start
from rlhf_core.lake.store import Lake
from rlhf_core.report import build_report, latest_run_id, report_markdown
from rlhf_core.security.audit import AuditLog
from tests.report.html_checks import assert_self_contained


def test_failed_run_still_gets_a_report_saying_what_is_missing(wizard_home: Path) -> None:
    lake = Lake(wizard_home)
    record_run_start(lake, "broken-1", "contract-pipeline", parameters={"contract": "/nowhere.yaml"})
    record_run_end(lake, "broken-1", "failed", row_counts={"rows_in": 10},
                   error="data quality: 60% of rows quarantined <run broken-1>")
    result = build_report(lake, "broken-1")
    html = Path(result.path).read_text("utf-8")
    assert "status <b>failed</b>" in html
    assert "Error: data quality: 60% of rows quarantined &lt;run broken-1&gt;" in html  # escaped
    assert "No scores for this run." in html and "No contract validation is recorded" in html
    assert "no scores partition" in html
    assert assert_self_contained(html) == []
    assert "pareto: not computed for this run" in report_markdown(result)
    written = [e for e in AuditLog(lake).entries() if e.kind == "report_written"]
    assert [e.details["sha256"] for e in written] == [result.sha256]
    with pytest.raises(LakeError, match="no completed contract-pipeline run"):
        latest_run_id(lake)


def test_unknown_run_is_refused_with_the_runs_present(wizard_home: Path) -> None:
    lake = Lake(wizard_home)
    record_run_start(lake, "ok-1", "contract-pipeline")
    record_run_end(lake, "ok-1", "completed")
    assert latest_run_id(lake) == "ok-1"
    with pytest.raises(LakeError, match=r"run nope-2 has no record and no data .*runs present: ok-1"):
        build_report(lake, "nope-2")
    with pytest.raises(LakeError, match="invalid run id"):
        build_report(lake, "../escape")
