"""The contract's null policy, applied at the ingest gate: no null ever reaches the scorer.

Every contract input declares ``on_null`` (``quarantine`` by default, ``default`` with a value,
or ``veto``). A row whose value of a contract input is null is moved to ``quarantine`` with rule
``missing_contract_input`` (and the reason naming every missing input), gets the declared
default in place of the null, or is kept and vetoed: the null is replaced by a placeholder (the
input's ``default`` when given, else the low end of its range, 0, false or "") and the row's
``null_veto`` flag is set, which the scorer ORs into the contract's ``veto`` (floor reward). Rows
are conserved either way. When any input the table carries declares ``veto``, the accepted table
gets the ``null_veto`` column (false where nothing was missing), so every part of the run has it.
Inputs the table does not carry at ingest (reward-model or remote-scorer columns added later) are
left to the stages that add them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.lake.catalog import QUARANTINE_SCHEMA
from rlhf_core.lake.schemas import NULL_VETO_COLUMN

RULE = "missing_contract_input"


@dataclass(frozen=True)
class NullInput:
    """One contract input's null policy (what the ingest needs of an ``InputDecl``).

    ``default`` is the value a null becomes: the declared default (``default``) or the
    placeholder a vetoed row is computed with (``veto``).
    """

    name: str
    on_null: str = "quarantine"
    default: Any = None


@dataclass(frozen=True)
class NullOutcome:
    """Rows kept (nulls filled or vetoed where the contract says so), rows quarantined, and
    counts: nulls filled and nulls vetoed per input, and rows vetoed (a row may miss several)."""

    accepted: pa.Table
    quarantined: pa.Table
    filled: dict[str, int]
    vetoed: dict[str, int] = field(default_factory=dict)
    vetoed_rows: int = 0


def _placeholder(decl: Any) -> Any:
    """What a vetoed row's null becomes: the declared default, else a value inside the range."""
    if decl.default is not None:
        return decl.default
    if decl.lo is not None:
        return decl.lo
    return {"bool": False, "str": ""}.get(decl.dtype, 0)


def null_inputs(program: Any) -> list[NullInput]:
    """The null policies of a compiled contract's inputs (``program.inputs``)."""
    return [NullInput(d.name, d.on_null, _placeholder(d) if d.on_null == "veto" else d.default)
            for d in program.inputs]


def apply_null_policy(table: pa.Table, inputs: Sequence[NullInput], run_id: str) -> NullOutcome:
    """Quarantine, fill or veto the rows of ``table`` whose contract inputs are null.

    Returns:
        The outcome; ``accepted.num_rows + quarantined.num_rows == table.num_rows``.
    """
    present = [i for i in inputs if i.name in table.column_names]
    missing = np.zeros(table.num_rows, dtype=bool)
    veto = np.zeros(table.num_rows, dtype=bool)
    reasons: dict[int, list[str]] = {}
    filled: dict[str, int] = {}
    vetoed: dict[str, int] = {}
    for spec in present:
        column = table.column(spec.name)
        if not column.null_count:
            continue
        nulls = pc.is_null(column).to_numpy(zero_copy_only=False)
        if spec.on_null in ("default", "veto"):
            fill = pa.scalar(spec.default).cast(column.type)
            table = table.set_column(table.schema.get_field_index(spec.name), spec.name,
                                     pc.fill_null(column, fill))
            (filled if spec.on_null == "default" else vetoed)[spec.name] = int(nulls.sum())
            if spec.on_null == "veto":
                veto |= nulls
            continue
        missing |= nulls
        for index in np.flatnonzero(nulls):
            reasons.setdefault(int(index), []).append(spec.name)
    if any(spec.on_null == "veto" for spec in present):
        flag = pa.array(veto, pa.bool_())
        if NULL_VETO_COLUMN in table.column_names:  # re-gated: keep earlier vetoes
            flag = pc.or_(pc.fill_null(table.column(NULL_VETO_COLUMN), False), flag)
            table = table.drop_columns([NULL_VETO_COLUMN])
        table = table.append_column(pa.field(NULL_VETO_COLUMN, pa.bool_(), nullable=False), flag)
    vetoed_rows = int((veto & ~missing).sum())
    if not missing.any():
        return NullOutcome(table, QUARANTINE_SCHEMA.empty_table(), filled, vetoed, vetoed_rows)
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
    return NullOutcome(accepted, quarantined, filled, vetoed, vetoed_rows)
