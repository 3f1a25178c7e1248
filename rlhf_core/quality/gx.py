"""Quality gates: Great Expectations suites with row-level quarantine.

This is the ONLY module that imports ``great_expectations``. :func:`check_table` runs a table's
suite (``rlhf_core/quality/suite_data/<kind>.yaml``) two ways and requires them to agree:

* every rule's Arrow row predicate (:func:`~rlhf_core.quality.suites.row_failures`) over all
  rows decides the split into accepted rows and ``quarantine`` rows (rule + reason + the row as
  JSON; uniqueness keeps the first occurrence of an id);
* GX validates the same rules in its ephemeral context with a pandas datasource
  (``result_format: COMPLETE``) and gives the suite result; its ``unexpected_index_list`` per
  expectation must equal the Arrow predicate's failing rows, else the check raises (a bug).
  Tables above ``gx_max_rows`` are validated by GX on a prefix plus every flagged row, which keeps
  a 10M-row check at Arrow speed while every flagged row is still confirmed by GX.

:func:`check_length_bias` is the pairs' length gate: one aggregate expectation
(``expect_column_mean_to_be_between`` on the 0/1 ``chosen_longer`` column, at most the contract's
``selection.max_chosen_longer``), cross-checked against NumPy's share.

Rows are conserved (``rows_in == accepted + quarantined``, checked), and when the failure rate
exceeds ``max_failure_rate`` a :class:`QualityGateError` (a :class:`DataQualityError`) says so
with the top reasons. GX takes seconds to import, so the import, the context, the datasource and
the batch definition are created once per process (lazily, on the first check) and reused.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from rlhf_core.errors import DataQualityError
from rlhf_core.lake.catalog import QUARANTINE_SCHEMA
from rlhf_core.quality.suites import (
    Rule,
    check_column_type,
    derived_column,
    duplicated_values,
    load_suite,
    row_failures,
    text_view,
)

GX_MAX_ROWS = 200_000
"""Above this many rows GX validates a prefix plus every flagged row (Arrow checks all rows)."""
_UNIQUE = "expect_column_values_to_be_unique"


@dataclass(frozen=True)
class QualityResult:
    """Outcome of one quality check.

    Attributes:
        accepted: The rows that passed every rule (same schema as the input).
        quarantined: ``quarantine`` rows for the rows that failed (one per failing row).
        suite_result: JSON-able summary: suite, success, per-expectation counts, timings.
        failure_rate: ``quarantined / rows_in`` (0 for an empty table).
    """

    accepted: pa.Table
    quarantined: pa.Table
    suite_result: dict[str, Any]
    failure_rate: float


class QualityGateError(DataQualityError):
    """The failure rate exceeded the threshold; ``result`` holds the full split for the caller."""

    def __init__(self, message: str, result: QualityResult) -> None:
        super().__init__(message)
        self.result = result


DERIVED_SUITES = {
    "scores": "fix the rows' inputs (NaN or infinite values) or the contract (`rlhf-wizard "
              "contract lint` lists its NaN risks), then re-run",
}
"""Suites of tables the pipeline computes (checked with no tolerance, never quarantined): their
failures name the first failing row and where the cause lies, not a quarantine to inspect."""

_GX_LOCK = threading.Lock()


def _gx() -> tuple[Any, Any]:
    """``(great_expectations module, batch definition)`` created once per process (thread-safe)."""
    with _GX_LOCK:
        return _build_gx()


def warm_up_in_background() -> threading.Thread:
    """Import GX and build its context in a daemon thread, off a run's critical path.

    Importing Great Expectations takes seconds; a run starts this first thing, so the import
    overlaps the Prefect server start-up and the run's first stages instead of delaying its first
    quality check. Errors surface (with their message) at that first check, not here.
    """
    def _warm() -> None:
        try:
            _gx()
        except Exception:  # noqa: BLE001 - check_table raises it again where it is understood
            return

    thread = threading.Thread(target=_warm, name="gx-warm-up", daemon=True)
    thread.start()
    return thread


@cache
def _build_gx() -> tuple[Any, Any]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("rlhf_wizard").add_dataframe_asset("table")
    return gx, asset.add_batch_definition_whole_dataframe("whole")


def _expectations(gx: Any, rules: Iterable[tuple[Rule, str, str]]) -> list[Any]:
    built = []
    for index, (rule, column, checked) in enumerate(rules):
        if rule.derive is not None:
            expectation = gx.expectations.ExpectColumnValuesToBeInSet(
                column=checked, value_set=[True]
            )
        else:
            name = "".join(part.title() for part in rule.expectation.split("_"))
            expectation = getattr(gx.expectations, name)(column=checked, **rule.kwargs)
        expectation.meta = {"rule": rule.rule, "column": column, "check": index}
        built.append(expectation)
    return built


def _gx_rows(
    table: pa.Table, checks: list[tuple[Rule, str, str]], fails: list[np.ndarray], limit: int
) -> np.ndarray:
    """Row positions GX validates: all rows, or a prefix plus every flagged/duplicated row."""
    n = table.num_rows
    if n <= limit:
        return np.arange(n)
    keep = np.zeros(n, dtype=bool)
    keep[:limit] = True
    for (rule, column, _), failed in zip(checks, fails, strict=True):
        keep |= failed
        if rule.expectation == _UNIQUE and failed.any():
            keep |= duplicated_values(table.column(column))
    return np.flatnonzero(keep)


def _frame(
    table: pa.Table,
    checks: list[tuple[Rule, str, str]],
    derived: dict[str, np.ndarray],
    rows: np.ndarray,
) -> Any:
    """The pandas frame GX validates: the checked columns and derived predicates at ``rows``."""
    needed = sorted({column for _, column, checked in checks if checked == column})
    view = table.select(needed)
    if len(rows) != table.num_rows:
        view = view.take(pa.array(rows))
    for position, name in enumerate(view.column_names):
        view = view.set_column(position, name, text_view(view.column(name)))
    frame = view.to_pandas()
    for name, values in derived.items():
        frame[name] = values[rows]
    return frame


def _reason(rule: Rule, column: str, value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return rule.reason.format(column=column, value=text, **rule.kwargs)


def _record_json(row: dict[str, Any]) -> str:
    def _default(value: Any) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8", "backslashreplace")
        return str(value)

    return json.dumps(row, ensure_ascii=False, default=_default)


def _reference_set(response_ids: Iterable[str] | pa.Array | pa.ChunkedArray | None
                   ) -> pa.Array | None:
    """The accepted ids as one Arrow string array (the value set of ``is_in``), without a pass
    through Python objects when they already are Arrow."""
    if response_ids is None:
        return None
    if isinstance(response_ids, pa.ChunkedArray):
        return response_ids.combine_chunks().cast(pa.string())
    if isinstance(response_ids, pa.Array):
        return response_ids.cast(pa.string())
    return pa.array(list(response_ids), pa.string())


def check_table(
    kind: str,
    table: pa.Table,
    *,
    run_id: str,
    max_failure_rate: float = 0.05,
    response_ids: Iterable[str] | pa.Array | pa.ChunkedArray | None = None,
    gx_max_rows: int = GX_MAX_ROWS,
) -> QualityResult:
    """Validate ``table`` with suite ``kind`` and quarantine the failing rows.

    Args:
        kind: ``responses``, ``preferences``, ``scores`` or ``quarantine``.
        table: The rows to check.
        run_id: Ingest/scoring run id (stored in quarantine rows, named in errors).
        max_failure_rate: Highest tolerated quarantined fraction, in [0, 1].
        response_ids: For ``preferences``: the accepted response ids; pairs naming any other id
            are quarantined as ``dangling_reference``. ``None`` skips that rule.
        gx_max_rows: Tables up to this size are validated by GX whole; larger ones by GX on
            their first ``gx_max_rows`` rows plus every row any Arrow predicate flags (and every
            occurrence of a duplicated id), while the Arrow predicates check all rows.

    Returns:
        The split, the GX suite summary and the failure rate.

    Raises:
        SchemaMismatchError: If the table lacks a column the suite requires.
        QualityGateError: If more than ``max_failure_rate`` of the rows failed.
        DataQualityError: If rows were not conserved, or GX and the Arrow predicates disagree
            (both bugs).
    """
    started = time.perf_counter()
    refs = _reference_set(response_ids)
    checks: list[tuple[Rule, str, str]] = []
    derived: dict[str, np.ndarray] = {}
    fails: list[np.ndarray] = []
    for rule in load_suite(kind):
        for column in rule.resolve(table, kind):
            check_column_type(rule, table, column, kind)
            if rule.derive == "known_response" and refs is None:
                continue
            checked = column if rule.derive is None else derived_column(rule, column)
            fails.append(row_failures(rule, table, column, refs))
            if rule.derive is not None:
                derived[checked] = ~fails[-1]
            checks.append((rule, column, checked))
    rows = _gx_rows(table, checks, fails, gx_max_rows)
    frame = _frame(table, checks, derived, rows)
    gx, batch_definition = _gx()
    suite = gx.ExpectationSuite(name=f"{kind}_suite")
    for expectation in _expectations(gx, checks):
        suite.add_expectation(expectation)
    setup = time.perf_counter()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    validation = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    validated = time.perf_counter()

    results = []
    for outcome in validation.results:
        meta = outcome.expectation_config.meta or {}
        index = int(meta["check"])
        rule, column, _ = checks[index]
        where = f"run {run_id}: {kind} rule {rule.rule} ({outcome.expectation_config.type}) on '{column}'"
        if (outcome.exception_info or {}).get("raised_exception", False):
            message = str(outcome.exception_info.get("exception_message", "")).splitlines()[:1]
            raise DataQualityError(
                f"{where} could not run: {' '.join(message)}; check the column type"
            )
        flagged = {int(i) for i in outcome.result.get("unexpected_index_list") or []}
        ours = set(np.flatnonzero(fails[index][rows]).tolist())
        agree = ours <= flagged if rule.expectation == _UNIQUE else ours == flagged
        if not agree:
            raise DataQualityError(
                f"{where}: GX flags {len(flagged)} rows, the Arrow predicate {len(ours)}; report this bug"
            )
        results.append(
            {
                "expectation": outcome.expectation_config.type,
                "rule": rule.rule,
                "column": column,
                "success": bool(outcome.success),
                "unexpected_count": int(fails[index].sum()),
            }
        )
    failures: dict[int, list[tuple[Rule, str]]] = {}
    for (rule, column, _), failed in zip(checks, fails, strict=True):
        for row in np.flatnonzero(failed).tolist():
            failures.setdefault(row, []).append((rule, column))
    result = _split(kind, table, failures, run_id)
    rows_in = table.num_rows
    if result[0].num_rows + result[1].num_rows != rows_in:
        raise DataQualityError(
            f"run {run_id}: {kind} rows not conserved ({rows_in} in, {result[0].num_rows} accepted, "
            f"{result[1].num_rows} quarantined); report this bug"
        )
    rate = result[1].num_rows / rows_in if rows_in else 0.0
    summary = {
        "suite": kind,
        "success": bool(validation.success),
        "rows_in": rows_in,
        "accepted": result[0].num_rows,
        "quarantined": result[1].num_rows,
        "failure_rate": rate,
        "expectations": results,
        "gx_rows_validated": int(len(rows)),
        "seconds_setup": setup - started,
        "seconds_validate": validated - setup,
        "seconds_total": time.perf_counter() - started,
    }
    quality = QualityResult(result[0], result[1], summary, rate)
    if rate > max_failure_rate:
        top = Counter(rule for rule in result[1].column("rule").to_pylist()).most_common(3)
        reasons = ", ".join(f"{name} ({count})" for name, count in top)
        if kind in DERIVED_SUITES:  # nothing to quarantine or tolerate: the cause is upstream
            raise QualityGateError(
                f"run {run_id}: {rate:.1%} of {rows_in} {kind} rows failed quality: top reasons: "
                f"{reasons}; e.g. {_first_line(result[1].column('reason')[0].as_py())}; {kind} "
                f"are derived data: {DERIVED_SUITES[kind]}",
                quality,
            )
        raise QualityGateError(
            f"ingest run {run_id}: {rate:.1%} of {rows_in} {kind} rows failed quality (threshold "
            f"{max_failure_rate:.1%}): top reasons: {reasons}; inspect them with "
            f"`rlhf-wizard data quarantine` and fix the source or raise the threshold",
            quality,
        )
    return quality


def _first_line(text: str | None) -> str:
    return " ".join(str(text or "").split())[:200]


def _split(
    kind: str, table: pa.Table, failures: dict[int, list[tuple[Rule, str]]], run_id: str
) -> tuple[pa.Table, pa.Table]:
    """Accepted rows and ``quarantine`` rows (first failing rule; every reason joined)."""
    if not failures:  # the common case: nothing to split, no copy of the table
        return table, QUARANTINE_SCHEMA.empty_table()
    bad = np.zeros(table.num_rows, dtype=bool)
    bad[list(failures)] = True
    accepted = table.filter(pa.array(~bad))
    order = sorted(failures)
    rows = table.take(pa.array(order, pa.int64())).to_pylist() if order else []
    columns: dict[str, list[Any]] = {name: [] for name in QUARANTINE_SCHEMA.names}
    for index, row in zip(order, rows, strict=True):
        hits = failures[index]
        reasons = "; ".join(dict.fromkeys(_reason(r, c, row.get(c)) for r, c in hits))
        values = (
            str(row.get("source") or kind),
            row.get("source_line"),
            kind,
            hits[0][0].rule,
            reasons,
            _record_json(row),
            run_id,
        )
        for name, value in zip(QUARANTINE_SCHEMA.names, values, strict=True):
            columns[name].append(value)
    return accepted, pa.Table.from_pydict(columns, schema=QUARANTINE_SCHEMA)


LENGTH_BIAS_EXPECTATION = "expect_column_mean_to_be_between"
"""The length gate's expectation: the mean of the 0/1 column ``chosen_longer`` (one row per pair
exported as a pair, 1 when the chosen response is strictly longer) is at most the contract's
``selection.max_chosen_longer``."""


def check_length_bias(chosen_longer: np.ndarray, max_share: float, *, run_id: str) -> dict[str, Any]:
    """Validate the pairs' length bias with Great Expectations (the export's length gate).

    Args:
        chosen_longer: bool ``[N]``: the pair's chosen response is strictly longer.
        max_share: The highest share allowed (``selection.max_chosen_longer``).
        run_id: Named in errors.

    Returns:
        ``{expectation, column, max_value, observed_value, success}`` (``observed_value`` None
        and ``success`` True for an empty pair set: nothing to bias).

    Raises:
        DataQualityError: GX could not run the expectation, or its observed share differs from
            the NumPy share (a bug).
    """
    flags = np.asarray(chosen_longer, dtype=bool)
    result = {"expectation": LENGTH_BIAS_EXPECTATION, "column": "chosen_longer",
              "max_value": float(max_share), "observed_value": None, "success": True}
    if flags.size == 0:
        return result
    import pandas as pd

    gx, batch_definition = _gx()
    suite = gx.ExpectationSuite(name="pair_lengths_suite")
    suite.add_expectation(gx.expectations.ExpectColumnMeanToBeBetween(
        column="chosen_longer", max_value=float(max_share)))
    frame = pd.DataFrame({"chosen_longer": flags.astype(np.int8)})
    outcome = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite).results[0]
    if (outcome.exception_info or {}).get("raised_exception", False):
        message = str(outcome.exception_info.get("exception_message", "")).splitlines()[:1]
        raise DataQualityError(f"run {run_id}: the length-bias expectation could not run: {' '.join(message)}")
    observed = float(outcome.result["observed_value"])
    if abs(observed - float(flags.mean())) > 1e-9:
        raise DataQualityError(f"run {run_id}: GX measures a chosen-longer share of {observed}, NumPy "
                               f"{float(flags.mean())}; report this bug")
    return {**result, "observed_value": observed, "success": bool(outcome.success)}
