"""The ingest quality gate: adapter output -> quality-checked tables + one quarantine table.

Order matters: responses are checked first, then preferences against the ACCEPTED response ids,
so a pair whose response was quarantined is itself quarantined (``dangling_reference``) instead
of pointing at nothing. Every stage conserves rows, and the gate fails when the share of bad
source rows, responses or pairs exceeds ``max_failure_rate``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rlhf_core.errors import DataQualityError
from rlhf_core.ingest.adapters.base import IngestResult, check_conservation
from rlhf_core.ingest.nulls import NullInput, apply_null_policy
from rlhf_core.quality.gx import QualityGateError, check_table


class IngestGateError(DataQualityError):
    """The gate failed; ``quarantine`` holds every row quarantined up to the failing stage."""

    def __init__(self, message: str, quarantine: pa.Table) -> None:
        super().__init__(message)
        self.quarantine = quarantine


@dataclass(frozen=True)
class GatedIngest:
    """Tables that passed the gate, everything quarantined, and a JSON-able summary.

    Attributes:
        responses: Accepted responses.
        preferences: Accepted pairs (both responses accepted).
        quarantine: Adapter (``table='source'``), responses and preferences quarantine rows.
        rows_read: Source rows read.
        summary: Counts per stage and the GX suite summaries.
    """

    responses: pa.Table
    preferences: pa.Table
    quarantine: pa.Table
    rows_read: int
    summary: dict[str, Any]


def _check_responses_left(rows_in: int, quarantined: Sequence[pa.Table], run_id: str,
                          max_failure_rate: float, parts: Sequence[pa.Table]) -> None:
    """Fail when the responses quarantined by the suite and the contract's null policy together
    exceed the threshold (the suite alone checked only its own share), or when no response is
    left at all (even under a threshold of 100 %: there would be nothing to score).

    Raises:
        IngestGateError: Naming the responses and the top rules.
    """
    rules = Counter(rule for table in quarantined for rule in table.column("rule").to_pylist())
    bad = sum(rules.values())
    rate = bad / rows_in if rows_in else 0.0
    reasons = ", ".join(f"{name} ({count})" for name, count in rules.most_common(3))
    if bad == rows_in:
        raise IngestGateError(
            f"ingest run {run_id}: all {rows_in} responses failed quality (top reasons: "
            f"{reasons}); nothing is left to score: inspect them with `rlhf-wizard data "
            "quarantine` and fix the source or declare the contract inputs' on_null",
            pa.concat_tables(parts),
        )
    if rate > max_failure_rate:
        raise IngestGateError(
            f"ingest run {run_id}: {rate:.1%} of {rows_in} responses rows failed quality "
            f"(threshold {max_failure_rate:.1%}): top reasons: {reasons}; inspect them with "
            "`rlhf-wizard data quarantine` and fix the source, declare the contract inputs' "
            "on_null, or raise the threshold",
            pa.concat_tables(parts),
        )


def gate_ingest(
    result: IngestResult, *, run_id: str, max_failure_rate: float = 0.05,
    null_inputs: Sequence[NullInput] = (),
) -> GatedIngest:
    """Run the quality suites over an adapter's output, then the contract's null policy.

    Args:
        result: What an adapter returned.
        run_id: The ingest run id (named in errors and stored in quarantine rows).
        max_failure_rate: Highest tolerated failing fraction per stage, in [0, 1].
        null_inputs: The contract's inputs and their ``on_null`` (see
            :mod:`rlhf_core.ingest.nulls`): responses missing one are quarantined, filled or
            vetoed (kept, flagged ``null_veto``), and pairs with a quarantined side follow them.

    Returns:
        The gated tables.

    Raises:
        IngestGateError: If a stage's failure rate exceeds the threshold, or no response is left
            to score; carries the quarantine rows so far so the caller can still persist them.
    """
    check_conservation(result)
    source_rate = result.rows_quarantined / result.rows_read if result.rows_read else 0.0
    if source_rate > max_failure_rate:
        rules = sorted(set(result.quarantine.column("rule").to_pylist()))
        raise IngestGateError(
            f"ingest run {run_id}: {source_rate:.1%} of {result.rows_read} source rows could not be "
            f"read (threshold {max_failure_rate:.1%}): {', '.join(rules)}; check the adapter or "
            "mapping, and inspect them with `rlhf-wizard data quarantine`",
            result.quarantine,
        )
    if result.responses.num_rows == 0:
        raise IngestGateError(
            f"ingest run {run_id}: no responses were read ({result.rows_read} source rows, "
            f"{result.rows_quarantined} quarantined); nothing to score: check the source and its "
            "adapter or mapping", result.quarantine)
    parts = [result.quarantine]
    try:
        responses = check_table(
            "responses", result.responses, run_id=run_id, max_failure_rate=max_failure_rate
        )
        parts.append(responses.quarantined)
        nulls = apply_null_policy(responses.accepted, null_inputs, run_id)
        parts.append(nulls.quarantined)
        _check_responses_left(result.responses.num_rows, parts[-2:], run_id, max_failure_rate,
                              parts)
        preferences = check_table(
            "preferences",
            result.preferences,
            run_id=run_id,
            max_failure_rate=max_failure_rate,
            response_ids=nulls.accepted.column("response_id"),
        )
    except QualityGateError as exc:
        parts.append(exc.result.quarantined)
        raise IngestGateError(str(exc), pa.concat_tables(parts)) from None
    quarantine = pa.concat_tables([*parts, preferences.quarantined])
    summary = {
        "run_id": run_id,
        "source_rows": {
            "read": result.rows_read,
            "accepted": result.rows_accepted,
            "quarantined": result.rows_quarantined,
            "duplicates": result.duplicates,
        },
        "responses": responses.suite_result,
        "contract_nulls": {"quarantined": nulls.quarantined.num_rows, "filled": nulls.filled,
                           "vetoed": nulls.vetoed, "vetoed_rows": nulls.vetoed_rows},
        "preferences": preferences.suite_result,
        "quarantined_total": quarantine.num_rows,
    }
    return GatedIngest(
        nulls.accepted, preferences.accepted, quarantine, result.rows_read, summary
    )
