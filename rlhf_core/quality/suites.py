"""Quality suites as data: load ``suite_data/<table>.yaml`` and evaluate derived predicates.

The suites ship inside this package (``rlhf_core/quality/suite_data/``, package data read with
:mod:`importlib.resources`), so an installed wheel finds them wherever it lives.

A suite is a list of rules; each rule names either a Great Expectations expectation (with
kwargs) or a ``derive`` predicate, the columns it applies to, and a reason template. This module
has no Great Expectations import (that lives only in :mod:`rlhf_core.quality.gx`); it resolves
column selectors against a table and computes the derived boolean columns:

* ``valid_text``: the value is valid UTF-8 without NUL characters;
* ``not_blank``: the text has a non-whitespace character;
* ``safety_consistent``: ``is_safe`` agrees with ``severity`` (0 iff safe);
* ``distinct_sides``: ``response_a_id != response_b_id``;
* ``known_response``: the id is among the reference response ids;
* ``finite``: the value is a finite number.

Nulls pass derived predicates (nulls are the ``null_required`` rule's business).

:func:`row_failures` is the Arrow row predicate of EVERY rule (native GX expectations included):
the quality gate splits rows with it and cross-checks it against GX's ``unexpected_index_list``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ruamel.yaml import YAML

from rlhf_core.errors import DataError, SchemaMismatchError
from rlhf_core.lake.schemas import preference_label_columns

SUPPORTED_EXPECTATIONS = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
)
"""Native GX expectations a suite may use (each has an Arrow twin in :func:`row_failures`)."""
SUITE_DIR = resources.files("rlhf_core.quality") / "suite_data"
"""The shipped suites (package data): one ``<kind>.yaml`` per table kind."""
TABLE_KINDS = (
    "responses", "preferences", "scores", "quarantine", "agreement", "disagreements",
)
DERIVED_PREFIX = "__ok__"


@dataclass(frozen=True)
class Rule:
    """One suite rule (see ``rlhf_core/quality/suite_data/responses.yaml`` for the fields)."""

    rule: str
    reason: str
    columns: tuple[str, ...] = ()
    expectation: str | None = None
    derive: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    match: str | None = None

    def resolve(self, table: pa.Table, suite: str) -> list[str]:
        """Columns of ``table`` this rule applies to.

        Raises:
            SchemaMismatchError: If a required (non-optional) column is missing.
        """
        if self.match is not None:
            pattern = re.compile(self.match)
            return [name for name in table.column_names if pattern.search(name)]
        names: list[str] = []
        for column in self.columns:
            if column == "@labels":
                names.extend(preference_label_columns(table.schema))
            elif column in table.column_names:
                names.append(column)
            elif not self.optional:
                raise SchemaMismatchError(
                    f"{suite} table has no column '{column}' (rule {self.rule}); columns are "
                    f"{', '.join(table.column_names)}"
                )
        return names


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_text_or_bytes(t: pa.DataType) -> bool:
    return _is_text(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


_TYPE_NEEDS: dict[str, tuple[str, Any]] = {
    "expect_column_values_to_be_between": ("a number", _is_number),
    "expect_column_values_to_be_in_set": ("an integer or text",
                                          lambda t: pa.types.is_integer(t) or _is_text(t)),
    "valid_text": ("text or bytes", _is_text_or_bytes),
    "not_blank": ("text or bytes", _is_text_or_bytes),
    "finite": ("a number", _is_number),
    "safety_consistent": ("a boolean", pa.types.is_boolean),
}


def text_view(array: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """A string view of a text column; bytes that are not UTF-8 become U+FFFD.

    GX's text expectations need strings; the rows whose bytes are invalid are flagged by the
    ``valid_text`` predicate, which reads the original column.
    """
    if not (pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type)):
        return array
    return pa.array(
        [None if v is None else v.decode("utf-8", "replace") for v in array.to_pylist()],
        pa.string(),
    )


def check_column_type(rule: Rule, table: pa.Table, column: str, suite: str) -> None:
    """Raise if ``column`` has a type ``rule`` cannot check (a wrong-typed column, not a bad row).

    Raises:
        SchemaMismatchError: Naming the column, its type and what the rule needs.
    """
    need = _TYPE_NEEDS.get(rule.expectation or rule.derive or "")
    if need is None:
        return
    label, accepts = need
    actual = table.schema.field(column).type
    if not accepts(actual):
        raise SchemaMismatchError(
            f"{suite} column '{column}' has type {actual}, rule {rule.rule} needs {label}; "
            "fix the adapter/mapping dtype"
        )


@cache
def load_suite(kind: str) -> tuple[Rule, ...]:
    """The rules of suite ``kind`` from ``suite_data/<kind>.yaml`` (cached per process)."""
    if kind not in TABLE_KINDS:
        raise DataError(f"no quality suite for table '{kind}'; known: {', '.join(TABLE_KINDS)}")
    path = SUITE_DIR / f"{kind}.yaml"
    try:
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        rules = tuple(
            Rule(
                **{**raw, "columns": tuple(raw.get("columns", ())), "kwargs": raw.get("kwargs", {})}
            )
            for raw in document["rules"]
        )
    except (OSError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: invalid quality suite ({exc}); fix the YAML") from None
    for rule in rules:
        if (rule.expectation is None) == (rule.derive is None):
            raise DataError(
                f"{path}: rule {rule.rule} needs exactly one of 'expectation' or 'derive'"
            )
        if rule.expectation is not None and rule.expectation not in SUPPORTED_EXPECTATIONS:
            raise DataError(f"{path}: rule {rule.rule} uses unsupported {rule.expectation}")
        if rule.derive is not None and rule.derive not in DERIVATIONS:
            raise DataError(f"{path}: rule {rule.rule} derives unknown predicate '{rule.derive}'")
    return rules


def _valid_text(table: pa.Table, column: str, _refs: pa.Array | None) -> np.ndarray:
    array = table.column(column)
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        values = array.to_pylist()
        return np.array([v is None or _decodes(v) for v in values], dtype=bool)
    has_nul = pc.fill_null(pc.match_substring(array, "\x00"), False)
    return ~has_nul.to_numpy(zero_copy_only=False)


def _decodes(value: bytes) -> bool:
    try:
        return "\x00" not in value.decode("utf-8")
    except UnicodeDecodeError:
        return False


def _not_blank(table: pa.Table, column: str, _refs: pa.Array | None) -> np.ndarray:
    text = text_view(table.column(column))
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
    return ~pc.fill_null(blank, False).to_numpy(zero_copy_only=False)


def _safety_consistent(table: pa.Table, column: str, _refs: pa.Array | None) -> np.ndarray:
    if "severity" not in table.column_names:
        return np.ones(table.num_rows, dtype=bool)
    safe = table.column(column)
    zero = pc.equal(table.column("severity"), 0)
    return pc.fill_null(pc.equal(safe, zero), True).to_numpy(zero_copy_only=False)


def _distinct_sides(table: pa.Table, _column: str, _refs: pa.Array | None) -> np.ndarray:
    same = pc.equal(table.column("response_a_id"), table.column("response_b_id"))
    return ~pc.fill_null(same, False).to_numpy(zero_copy_only=False)


def _known_response(table: pa.Table, column: str, refs: pa.Array | None) -> np.ndarray:
    array = table.column(column)
    if refs is None:
        return np.ones(table.num_rows, dtype=bool)
    known = pc.is_in(array, value_set=refs)
    return (known.to_numpy(zero_copy_only=False)) | pc.is_null(array).to_numpy(zero_copy_only=False)


def _finite(table: pa.Table, column: str, _refs: pa.Array | None) -> np.ndarray:
    array = table.column(column)
    if not pa.types.is_floating(array.type):
        return np.ones(table.num_rows, dtype=bool)
    values = array.to_numpy(zero_copy_only=False)
    return np.isfinite(values) | pc.is_null(array).to_numpy(zero_copy_only=False)


DERIVATIONS = {
    "valid_text": _valid_text,
    "not_blank": _not_blank,
    "safety_consistent": _safety_consistent,
    "distinct_sides": _distinct_sides,
    "known_response": _known_response,
    "finite": _finite,
}


def derived_column(rule: Rule, column: str) -> str:
    """Name of the boolean column holding ``rule``'s predicate on ``column``."""
    return f"{DERIVED_PREFIX}{rule.derive}__{column}"


def derive(rule: Rule, table: pa.Table, column: str, refs: pa.Array | None) -> np.ndarray:
    """Evaluate a derived predicate: bool per row, True = the row passes."""
    assert rule.derive is not None  # callers only pass derive rules
    return DERIVATIONS[rule.derive](table, column, refs)


def later_duplicates(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """True for every non-null value that already occurred earlier (the first one is kept)."""
    n = len(array)
    valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
    if pc.count_distinct(array).as_py() == int(valid.sum()):
        return np.zeros(n, dtype=bool)
    rows = pa.table({"key": array, "row": np.arange(n)})
    first = rows.group_by("key", use_threads=False).aggregate([("row", "min")])
    later = np.ones(n, dtype=bool)
    later[first.column("row_min").to_numpy()] = False
    return later & valid


def duplicated_values(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """True for every occurrence of a non-null value that occurs more than once."""
    later = later_duplicates(array)
    if not later.any():
        return later
    repeated = pc.unique(pc.filter(array, pa.array(later)))
    return pc.fill_null(pc.is_in(array, value_set=repeated), False).to_numpy(zero_copy_only=False)


def row_failures(
    rule: Rule, table: pa.Table, column: str, refs: pa.Array | None
) -> np.ndarray:
    """Arrow row predicate of ``rule`` on ``column``: True where the row FAILS.

    Mirrors the GX expectation (nulls fail only ``not_be_null``; NaN counts as null there, as
    in pandas; uniqueness flags later occurrences only).
    """
    array = table.column(column)
    if rule.derive is not None:
        return ~derive(rule, table, column, refs)
    if rule.expectation == "expect_column_values_to_not_be_null":
        return pc.is_null(array, nan_is_null=True).to_numpy(zero_copy_only=False)
    if rule.expectation == "expect_column_values_to_be_unique":
        return later_duplicates(array)
    if rule.expectation == "expect_column_values_to_be_between":
        low, high = rule.kwargs.get("min_value"), rule.kwargs.get("max_value")
        outside = pa.repeat(pa.scalar(False), len(array))
        if low is not None:
            outside = pc.or_(outside, pc.less(array, low))
        if high is not None:
            outside = pc.or_(outside, pc.greater(array, high))
        return pc.fill_null(outside, False).to_numpy(zero_copy_only=False)
    if rule.expectation == "expect_column_values_to_be_in_set":
        member = pc.is_in(array, value_set=pa.array(rule.kwargs["value_set"], array.type))
        return ~pc.or_(member, pc.is_null(array)).to_numpy(zero_copy_only=False)
    raise DataError(
        f"rule {rule.rule}: no row predicate for {rule.expectation}; use a known expectation"
    )
