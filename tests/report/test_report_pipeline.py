"""The HTML report of a real ``contract-pipeline`` run: content, self-containment, artifacts, CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlhf_core.errors import LakeError
from rlhf_core.lake.store import Lake
from rlhf_core.report import build_report, collect_run, report_relpath
from tests.report.conftest import BAD_EMPTY, BAD_RANGE, RUN_ID
from tests.report.html_checks import assert_self_contained

pytestmark = pytest.mark.integration

def _section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start: html.index("</section>", start)]


def test_pipeline_writes_the_report_as_its_last_stage(pipeline_run) -> None:
    lake, result = pipeline_run
    path = Path(result["report"])
    assert path == Path(Lake(lake).path(report_relpath(RUN_ID)))
    html = path.read_text("utf-8")
    assert len(assert_self_contained(html)) == 3  # histograms, violations, length bias
    assert result["contract"]["hash"] in html
    assert "status <b>completed</b>" in html
    for label in ("safe", "coherent", "concise", "bounded", "has_safe"):
        assert f"<td>{label}</td>" in _section(html, "contract")
    assert "proved statically" in _section(html, "contract")  # the ENSURES clause's check
    assert "approved</span> by users, safety_board, operator" in html
    for anchor, text in (("pareto", "not computed for this run"), ("policy", "not computed for this run"),
                         ("pairs", "not computed for this run"), ("plan", "No campaign plan")):
        assert text in _section(html, anchor)


def test_report_counts_quarantine_by_reason_and_quality_suites(pipeline_run) -> None:
    lake, result = pipeline_run
    html = Path(result["report"]).read_text("utf-8")
    quality = _section(html, "quality")
    assert re.search(rf"<td>empty_text</td><td class=\"num\">{BAD_EMPTY}</td>", quality)
    assert re.search(rf"<td>out_of_range</td><td class=\"num\">{BAD_RANGE}</td>", quality)
    for suite in ("responses", "scores"):
        assert f"<td>{suite}</td>" in quality
    assert result["ingest"]["quarantined"] == BAD_EMPTY + BAD_RANGE
    assert f"<b>{BAD_EMPTY + BAD_RANGE}</b>" in _section(html, "overview")


def test_report_length_correlation_matches_the_lake(pipeline_run) -> None:
    lake, result = pipeline_run
    data = collect_run(Lake(lake), RUN_ID)
    scores = Lake(lake).read_table("scores", run_id=RUN_ID, columns=["response_id", "reward"])
    responses = Lake(lake).read_table("responses", run_id=RUN_ID, columns=["response_id", "response"])
    length = {i: len(t) for i, t in zip(responses.column("response_id").to_pylist(),
                                         responses.column("response").to_pylist(), strict=True)}
    x = np.asarray([length[i] for i in scores.column("response_id").to_pylist()], float)
    y = np.asarray(scores.column("reward").to_pylist(), float)
    assert data.length.rows == scores.num_rows == result["scores"]["rows"]
    assert data.length.pearson == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-9)
    html = Path(result["report"]).read_text("utf-8")
    assert f"Pearson r = <b>{data.length.pearson:.4g}</b>" in html
    assert data.stats["violations"]["safe"] == pytest.approx(data.stats["veto_rate"])
    declared = Lake(lake).read_table("responses", run_id=RUN_ID, columns=["response_id", "length"])
    tokens = dict(zip(declared.column("response_id").to_pylist(), declared.column("length").to_pylist(), strict=True))
    t = np.asarray([tokens[i] for i in scores.column("response_id").to_pylist()], float)
    assert data.declared_length.pearson == pytest.approx(np.corrcoef(t, y)[0, 1], abs=1e-9)
    assert f"Pearson r = <b>{data.declared_length.pearson:.4g}</b>" in _section(html, "length")


def test_report_is_audited_with_its_hash(pipeline_run) -> None:
    import hashlib

    from rlhf_core.security.audit import AuditLog
    from rlhf_core.security.audit_verify import verify_audit

    lake, result = pipeline_run
    entries = [e for e in AuditLog(Lake(lake)).entries() if e.kind == "report_written" and e.subject == RUN_ID]
    digest = hashlib.sha256(Path(result["report"]).read_bytes()).hexdigest()
    # every write of the report is audited: the latest entry describes the file as it is now
    assert entries and entries[-1].details == {"path": result["report"], "sha256": digest,
                                               "bytes": Path(result["report"]).stat().st_size}
    assert entries[0].seq > max(e.seq for e in AuditLog(Lake(lake)).entries() if e.kind == "run_finished")
    assert verify_audit(Lake(lake)).ok


def test_pipeline_publishes_link_and_markdown_artifacts(pipeline_run) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, result = pipeline_run
    keys = [f"report-link-{RUN_ID}", f"report-{RUN_ID}", f"report-sections-{RUN_ID}"]
    with get_client(sync_client=True) as client:
        found = {a.key: a for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))}
    assert set(found) == set(keys)
    assert Path(result["report"]).resolve().as_uri() in str(found[keys[0]].data)
    assert result["report"] in str(found[keys[1]].data)
    assert found[keys[1]].type == "markdown" and found[keys[2]].type == "table"


def test_enriched_run_shows_pareto_lambda_pairs_and_plan(enriched_lake: Path) -> None:
    import json

    lake = Lake(enriched_lake)
    result = build_report(lake, RUN_ID)
    html = Path(result.path).read_text("utf-8")
    assert result.sections == {"pareto": True, "policy": True, "pairs": True, "plan": True,
                               "agreement": False}  # the generated data of this test has no labels
    assert "not computed" not in html and "No campaign plan" not in html
    pngs = assert_self_contained(html)
    assert len(pngs) == 5  # + Pareto front and Gantt chart
    gantt = (enriched_lake / "reports" / RUN_ID / "plan-gantt.png").read_bytes()
    assert gantt in pngs  # the planner's own chart, embedded byte for byte
    stored = json.loads((enriched_lake / "artifacts" / RUN_ID / "kl_policy.json").read_text())
    assert result.data.policy["lambda"] == stored["lambda"]
    assert f"<td class=\"num\">{stored['lambda']:.4g}</td>" in _section(html, "policy")
    pairs = lake.count_rows("pairs", RUN_ID)
    assert result.data.pairs.counts["pairs"] == pairs
    assert f"<td>best_vs_worst</td><td class=\"num\">{pairs}</td>" in _section(html, "pairs")
    view = result.data.pareto
    assert view.contract is not None and view.nash is not None and view.on_front.any()
    assert view.points.shape == (lake.count_rows("pareto", RUN_ID), 3)


def test_build_report_flow_defaults_to_the_latest_completed_run(pipeline_run) -> None:
    from flows.build_report import BuildReportParams
    from flows.build_report import build_report as build_report_flow

    lake, result = pipeline_run
    out = build_report_flow(BuildReportParams(lake_root=str(lake)))
    assert out["run_id"] == RUN_ID and out["path"] == result["report"]
    assert out["sections"] == {"pareto": False, "policy": False, "pairs": False, "plan": False,
                               "agreement": False}
    with pytest.raises(LakeError, match="no completed contract-pipeline run"):
        build_report_flow(BuildReportParams(lake_root=str(lake / "empty")))


def test_cli_report_writes_out_file_and_refuses_unknown_run(pipeline_run, tmp_path, monkeypatch) -> None:
    from rlhf_cli.main import app

    lake, _ = pipeline_run
    monkeypatch.setenv("RLHF_WIZARD_HOME", str(lake))
    out = tmp_path / "run.html"
    res = CliRunner().invoke(app, ["report", RUN_ID, "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert f'"out": "{out}"' in res.output
    assert out.read_bytes() == Path(Lake(lake).path(report_relpath(RUN_ID))).read_bytes()
    res = CliRunner().invoke(app, ["report", "no-such-run"])
    assert res.exit_code != 0 and isinstance(res.exception, LakeError)
    assert "no-such-run" in str(res.exception) and RUN_ID in str(res.exception)
