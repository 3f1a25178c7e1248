"""The contract's null policy, applied at the ingest gate: no null ever reaches the scorer.

Every contract input declares ``on_null`` (``quarantine`` by default, or ``default`` with a
value). A row whose value of a contract input is null is moved to ``quarantine`` with rule
``missing_contract_input`` (and the reason naming every missing input), or gets the declared
default in place of the null; rows are conserved either way. Inputs the table does not carry at
ingest (reward-model or remote-scorer columns added later) are left to the stages that add them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.lake.catalog import QUARANTINE_SCHEMA

RULE = "missing_contract_input"


@dataclass(frozen=True)
class NullInput:
    """One contract input's null policy (what the ingest needs of an ``InputDecl``)."""

    name: str
    on_null: str = "quarantine"
    default: Any = None


@dataclass(frozen=True)
class NullOutcome:
    """Rows kept (nulls filled where the contract says so), rows quarantined, and counts."""

    accepted: pa.Table
    quarantined: pa.Table
    filled: dict[str, int]


def null_inputs(program: Any) -> list[NullInput]:
    """The null policies of a compiled contract's inputs (``program.inputs``)."""
    return [NullInput(d.name, d.on_null, d.default) for d in program.inputs]


def apply_null_policy(table: pa.Table, inputs: Sequence[NullInput], run_id: str) -> NullOutcome:
    """Quarantine or fill the rows of ``table`` whose contract inputs are null.

    Returns:
        The outcome; ``accepted.num_rows + quarantined.num_rows == table.num_rows``.
    """
    present = [i for i in inputs if i.name in table.column_names]
    missing = np.zeros(table.num_rows, dtype=bool)
    reasons: dict[int, list[str]] = {}
    filled: dict[str, int] = {}
    for spec in present:
        column = table.column(spec.name)
        if not column.null_count:
            continue
        nulls = pc.is_null(column).to_numpy(zero_copy_only=False)
        if spec.on_null == "default":
            fill = pa.scalar(spec.default).cast(column.type)
            table = table.set_column(table.schema.get_field_index(spec.name), spec.name,
                                     pc.fill_null(column, fill))
            filled[spec.name] = int(nulls.sum())
            continue
        missing |= nulls
        for index in np.flatnonzero(nulls):
            reasons.setdefault(int(index), []).append(spec.name)
    if not missing.any():
        return NullOutcome(table, QUARANTINE_SCHEMA.empty_table(), filled)
    accepted = table.filter(pa.array(~missing))
    order = sorted(reasons)
    rows = table.take(pa.array(order, pa.int64())).to_pylist()
    quarantined = pa.Table.from_pydict({
        "source": [str(r.get("source") or "responses") for r in rows],
        "source_line": [r.get("source_line") for r in rows],
        "table": ["responses"] * len(rows),
        "rule": [RULE] * len(rows),
        "reason": [f"contract input {', '.join(repr(n) for n in reasons[i])} is null; the "
                   "contract quarantines rows missing it (on_null: quarantine)" for i in order],
        "record": [json.dumps(r, ensure_ascii=False, default=str) for r in rows],
        "ingest_run": [run_id] * len(rows),
    }, schema=QUARANTINE_SCHEMA)
    return NullOutcome(accepted, quarantined, filled)
