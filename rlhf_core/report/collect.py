"""Gather everything the run report shows from the lake: one read per table, aggregated at once.

Sections whose inputs a run did not produce (Pareto front, λ, pairs, plan) come back as None and
the report says "not computed for this run" instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from rlhf_core.errors import AuditError, LakeError
from rlhf_core.lake.catalog import Table
from rlhf_core.lake.runs import RunRecord, get_run
from rlhf_core.lake.store import Lake
from rlhf_core.report.aggregate import (
    LengthBias,
    declared_lengths,
    grouped_counts,
    histograms,
    length_bias,
    response_lengths,
)
from rlhf_core.report.agreement_view import AgreementView, read_agreement
from rlhf_core.report.contract_facts import ContractFacts, contract_facts
from rlhf_core.report.optional_tables import (
    PairsView,
    ParetoView,
    PlanView,
    read_json,
    read_pairs,
    read_pareto,
    read_plan,
    read_policy,
)
from rlhf_core.scoring.stats import UTILITY_PREFIX, score_stats
from rlhf_core.security.audit import AuditEntry, AuditLog

_RUN_TABLES = (Table.SCORES, Table.RESPONSES, Table.PLANS, Table.PARETO, Table.PAIRS, Table.SELECTIONS,
               Table.AGREEMENT)
"""Tables whose partition alone makes a run id reportable (e.g. a plan-campaign run)."""


@dataclass(frozen=True)
class QualitySuite:
    """One Great Expectations suite result as stored by the run.

    Attributes:
        name: Suite (table) name.
        success: Whether every expectation passed within the allowed failure rate.
        rows_in: Rows checked.
        quarantined: Rows the suite quarantined.
        failure_rate: Quarantined share.
        failed: ``(expectation, column, unexpected count)`` of failing expectations.
        expectations: Number of expectations evaluated.
    """

    name: str
    success: bool
    rows_in: int
    quarantined: int
    failure_rate: float
    failed: tuple[tuple[str, str, int], ...]
    expectations: int


@dataclass(frozen=True)
class RunReportData:
    """Everything one report page shows (aggregates only; no per-row data except a small sample)."""

    run_id: str
    generated_at: datetime
    run: RunRecord | None
    contract: ContractFacts | None
    quality: tuple[QualitySuite, ...]
    quarantine: tuple[dict, ...]
    stats: Mapping[str, Any] | None
    histograms: Mapping[str, tuple[np.ndarray, np.ndarray]]
    length: LengthBias | None
    declared_length: LengthBias | None
    pareto: ParetoView | None
    policy: Mapping[str, Any] | None
    pairs: PairsView | None
    plan: PlanView | None
    audit: tuple[AuditEntry, ...]
    notes: tuple[str, ...] = field(default=())
    agreement: AgreementView | None = None


def _suites(doc: Any) -> list[QualitySuite]:
    if not isinstance(doc, dict):
        return []
    found = [doc] if "suite" in doc else [v for v in doc.values() if isinstance(v, dict) and "suite" in v]
    return [
        QualitySuite(
            name=str(s["suite"]), success=bool(s.get("success")), rows_in=int(s.get("rows_in", 0)),
            quarantined=int(s.get("quarantined", 0)), failure_rate=float(s.get("failure_rate", 0.0)),
            failed=tuple((str(e.get("expectation")), str(e.get("column", "")), int(e.get("unexpected_count", 0)))
                         for e in s.get("expectations", []) if not e.get("success", True)),
            expectations=len(s.get("expectations", [])),
        )
        for s in found
    ]


def run_audit(lake: Lake, run_id: str) -> tuple[AuditEntry, ...]:
    """The audit entries of run ``run_id``: its own, and its contract's between its start and finish."""
    try:
        entries = AuditLog(lake).entries()
    except AuditError:
        return ()
    starts = [i for i, e in enumerate(entries) if e.kind == "run_started" and e.subject == run_id]
    if not starts:
        return tuple(e for e in entries if e.subject == run_id or e.details.get("run_id") == run_id)
    window = entries[starts[-1]:]
    ends = [i for i, e in enumerate(window) if e.kind == "run_finished" and e.subject == run_id]
    window = window[: ends[0] + 1] if ends else window
    used = {e.subject for e in window if e.kind == "contract_used" and e.details.get("run_id") == run_id}
    mine = [e for e in window if e.subject == run_id or e.details.get("run_id") == run_id]
    # contract validation is audited before the run id is attached (contract_used names it)
    mine += [e for e in window if e.subject in used and e.kind in ("contract_validated", "contract_approved")]
    return tuple(sorted({e.seq: e for e in mine}.values(), key=lambda e: e.seq))


def collect_run(lake: Lake, run_id: str) -> RunReportData:
    """Read and aggregate everything the report of run ``run_id`` shows.

    Args:
        lake: The lake the run wrote to.
        run_id: The run.

    Returns:
        The report data.

    Raises:
        LakeError: If the run has neither a run record nor scores in this lake.
    """
    notes: list[str] = []
    try:
        run = get_run(lake, run_id)
    except LakeError:
        run, notes = None, [f"run {run_id} has no record in the runs table"]
    score_parts = lake.part_paths(Table.SCORES, run_id)
    if run is None and not any(lake.part_paths(t, run_id) for t in _RUN_TABLES):
        raise LakeError(f"run {run_id} has no record and no data in {lake.root}; check the run id "
                        f"(runs present: {', '.join(lake.list_runs(Table.RUNS)) or 'none'}) and RLHF_WIZARD_HOME")
    params = dict(run.parameters) if run else {}
    audit = run_audit(lake, run_id)
    stats, hists, bias, declared = None, {}, None, None
    if score_parts:
        stats = score_stats([lake.uri(p) for p in score_parts])  # URIs open on object storage
        scores = lake.read_table(Table.SCORES, run_id=run_id)
        utils = [c for c in scores.column_names if c.startswith(UTILITY_PREFIX)]
        hists = histograms(scores, ["reward", *utils])
        response_parts = lake.part_paths(Table.RESPONSES, run_id)
        if response_parts:
            names = pq.read_schema(response_parts[0], filesystem=lake.fs).names
            texts = lake.read_table(Table.RESPONSES, run_id=run_id,
                                    columns=["response_id", "response", *(["length"] if "length" in names else [])])
            bias = length_bias(scores, response_lengths(texts))
            attr = declared_lengths(texts)
            declared = length_bias(scores, attr, sample=0) if attr is not None else None
        else:
            notes.append("no responses partition: reward vs length not computed")
    else:
        notes.append("no scores partition: score distributions not computed")
    quality = _suites(read_json(lake, f"artifacts/{run_id}/quality-ingest.json"))
    quality += _suites(read_json(lake, f"artifacts/{run_id}/quality-scores.json"))
    quarantine: list[dict] = []
    if lake.part_paths(Table.QUARANTINE, run_id):
        table = lake.read_table(Table.QUARANTINE, run_id=run_id, columns=["table", "rule", "reason"])
        quarantine = grouped_counts(table, ["table", "rule"], example="reason")
    facts = contract_facts(run_id, audit, params.get("contract"), bool(params.get("dry_run")),
                           (stats or {}).get("violations", {}))
    return RunReportData(
        run_id=run_id, generated_at=datetime.now(UTC), run=run, contract=facts,
        quality=tuple(quality), quarantine=tuple(quarantine), stats=stats, histograms=hists,
        length=bias, declared_length=declared, pareto=read_pareto(lake, run_id), policy=read_policy(lake, run_id),
        pairs=read_pairs(lake, run_id), plan=read_plan(lake, run_id), audit=audit, notes=tuple(notes),
        agreement=read_agreement(lake, run_id),
    )
