"""Score an Arrow table under a contract: compiled JAX in chunks, or the contract's SQL in DuckDB.

Both return the id columns followed by ``reward``, ``u_<stakeholder>``, ``v_<clause label>``,
``veto``, ``penalty``, ``outside_bargaining_set``, ``ensures_ok`` (same names, same order).
Compiled functions are cached per program (``compile_jax`` / ``compile_sql`` are memoised on
the frozen program).

Chunking: rows are scored in chunks of at most ``chunk_rows`` padded to a power of two (few
distinct shapes, so few recompiles). For programs with FORALL / EXISTS or ``... IN prompt``
normalisations, rows are first grouped by a dense prompt index (stable sort on the group column)
and chunks end on prompt boundaries, so every prompt is reduced whole; results come back in the
input row order.

A ``null_veto`` column (:data:`rlhf_core.lake.schemas.NULL_VETO_COLUMN`, added by the ingest
gate for ``on_null: veto`` inputs) is ORed into ``veto``: those rows get the floor reward. Both
compilations read it, so the differential check still compares like with like.

Run-wide normalisations (``... IN run``) read statistics of the whole run: ``score_table``
computes them from the table itself unless the caller passes ``run_stats`` (a sharded run
computes them once over every shard, see ``tasks/scoring.py``), and hands the same statistics to
every chunk. Programs without them never compute any.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.contract.legal_blocks.compile_jax import (
    compile_jax,
    input_columns,
    run_argument_values,
    run_input_columns,
)
from rlhf_core.contract.legal_blocks.compile_sql import compile_sql, quote_ident
from rlhf_core.contract.legal_blocks.normalize import RunStats
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import DataError, SchemaMismatchError
from rlhf_core.lake.schemas import NULL_VETO_COLUMN

DEFAULT_ID_COLUMNS = ("response_id", "row_id", "id")
_MIN_BUCKET = 1024


def _bucket(n: int) -> int:
    return max(_MIN_BUCKET, 1 << max(n - 1, 0).bit_length())


def default_id_columns(program: ContractProgram, available: Sequence[str]) -> list[str]:
    """The group column and the usual row-id columns that ``available`` carries."""
    wanted = (program.group_column, *DEFAULT_ID_COLUMNS)
    return [c for c in dict.fromkeys(wanted) if c in available]


def output_names(program: ContractProgram) -> list[str]:
    """Output column names, in order."""
    return (
        ["reward"]
        + [f"u_{s.name}" for s in program.stakeholders]
        + [f"v_{c.label}" for c in program.clauses]
        + ["veto", "penalty", "outside_bargaining_set", "ensures_ok"]
    )


def input_arrays(
    program: ContractProgram, table: pa.Table, only: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Cast the program's inputs from ``table`` to numpy (float32 / bool; ``<s>__len``).

    ``only`` restricts the result to those declared inputs (the others are zeros of the right
    dtype: a run-statistics pre-pass reads only the columns the ``... IN run`` arguments use).

    Raises:
        SchemaMismatchError: A declared input column is missing or has an incompatible type.
        DataError: An input column holds nulls.
    """
    arrays: dict[str, np.ndarray] = {}
    for decl, name in zip(program.inputs, input_columns(program), strict=True):
        if only is not None and decl.name not in only:
            arrays[name] = np.zeros(table.num_rows, bool if decl.dtype == "bool" else np.float32)
            continue
        if decl.name not in table.column_names:
            raise SchemaMismatchError(
                f"contract {program.name!r}: input column {decl.name!r} is missing from the "
                f"table (columns: {table.column_names}); map it in the dataset adapter"
            )
        column = table.column(decl.name)
        if column.null_count:
            first = int(pc.index(pc.is_null(column), True).as_py())
            raise DataError(
                f"contract {program.name!r}: input column {decl.name!r} is null at row {first}; "
                "quarantine or fill null rows before scoring"
            )
        try:
            if decl.dtype == "str":
                column = pc.utf8_length(column)
            target = pa.bool_() if decl.dtype == "bool" else pa.float32()
            arrays[name] = column.cast(target).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatchError(
                f"contract {program.name!r}: input column {decl.name!r} of type {column.type} "
                f"cannot be read as {decl.dtype}: {exc}"
            ) from exc
    return arrays


def null_veto(table: pa.Table) -> np.ndarray | None:
    """The ``null_veto`` flags of ``table`` as bool [n] (null counts as false), or None when the
    table has no such column."""
    if NULL_VETO_COLUMN not in table.column_names:
        return None
    column = pc.fill_null(table.column(NULL_VETO_COLUMN), False)
    return column.to_numpy(zero_copy_only=False).astype(bool)


def dense_segments(table: pa.Table, column: str) -> np.ndarray:
    """int32 dense index (0..P-1, first-seen order) of ``column``'s values."""
    if column not in table.column_names:
        raise SchemaMismatchError(
            f"group column {column!r} is missing; FORALL/EXISTS clauses need it to find prompts"
        )
    values = table.column(column).combine_chunks()
    if values.null_count:
        first = int(pc.index(pc.is_null(values), True).as_py())
        raise DataError(
            f"group column {column!r} is null at row {first}; every candidate needs a prompt id"
        )
    n = len(values)
    if n > 1:
        head, tail = values.slice(0, n - 1), values.slice(1)
        if pc.all(pc.less_equal(head, tail)).as_py():
            # Sorted ids (the lake's and the generator's order): prompts are contiguous, so the
            # dense index is a running count of id changes — no hashing of every string.
            segments = np.zeros(n, np.int32)
            np.cumsum(pc.not_equal(head, tail).to_numpy(zero_copy_only=False), out=segments[1:])
            return segments
    return pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False).astype(np.int32)


def _chunks(segments: np.ndarray | None, n: int, chunk_rows: int) -> list[tuple[int, int]]:
    if segments is None:
        return [(s, min(s + chunk_rows, n)) for s in range(0, n, chunk_rows)]
    starts = np.flatnonzero(np.r_[True, segments[1:] != segments[:-1]]) if n else np.array([])
    bounds, begin = [], 0
    for start in starts[1:]:
        if start - begin >= chunk_rows:
            bounds.append((begin, int(start)))
            begin = int(start)
    if n:
        bounds.append((begin, n))
    return bounds


def run_values(program: ContractProgram, table: pa.Table) -> dict[str, np.ndarray]:
    """Values of every ``... IN run`` argument on the rows of ``table`` (reads only the
    inputs those arguments use). Collect them over every part of a run and pass the lists to
    ``RunStats.from_values``."""
    if not compile_jax(program).needs_run_stats:
        return {}
    return run_argument_values(program, input_arrays(program, table, run_input_columns(program)))


def table_run_stats(program: ContractProgram, table: pa.Table) -> RunStats | None:
    """Run statistics of ``table`` taken as the whole run (None when the program needs none)."""
    if not compile_jax(program).needs_run_stats:
        return None
    return RunStats.from_values(program, run_values(program, table))


def _check_max_candidates(program: ContractProgram, table: pa.Table, dense: np.ndarray) -> None:
    if program.max_candidates is None or not dense.size:
        return
    sizes = np.bincount(dense)
    worst = int(np.argmax(sizes))
    if sizes[worst] > program.max_candidates:
        row = int(np.flatnonzero(dense == worst)[0])
        prompt = table.column(program.group_column)[row].as_py()
        raise DataError(
            f"contract {program.name!r} declares max_candidates {program.max_candidates}, but "
            f"prompt {prompt!r} has {int(sizes[worst])} candidates; raise max_candidates (and "
            "re-approve the contract) or split the prompt's candidates"
        )


def score_table(
    program: ContractProgram,
    table: pa.Table,
    id_columns: Sequence[str] | None = None,
    chunk_rows: int = 1 << 20,
    run_stats: RunStats | None = None,
) -> pa.Table:
    """Score every row of ``table`` with the compiled JAX contract.

    Args:
        program: Checked contract program.
        table: Rows carrying the declared inputs (and the group column for quantifiers and
            ``... IN prompt`` normalisations).
        id_columns: Columns copied to the output (default: group column and usual id columns).
        chunk_rows: Rows per compiled call.
        run_stats: Statistics of the whole run for ``... IN run`` normalisations (default:
            ``table`` is the whole run and they are computed from it). Ignored by programs
            without run-wide normalisations.

    Returns:
        Arrow table: id columns then the outputs (see ``output_names``), in input row order.

    Raises:
        DataError: Null inputs or prompt ids, or a prompt with more candidates than the
            contract's ``max_candidates``.
    """
    compiled = compile_jax(program)
    ids = default_id_columns(program, table.column_names) if id_columns is None else id_columns
    arrays = input_arrays(program, table)
    veto = null_veto(table)
    n = table.num_rows
    if compiled.needs_run_stats and run_stats is None:
        run_stats = RunStats.from_values(program, run_argument_values(program, arrays))
    if not compiled.needs_run_stats:
        run_stats = None
    segments, order = None, None
    if program.max_candidates is not None and not compiled.needs_segments:
        _check_max_candidates(program, table, dense_segments(table, program.group_column))
    if compiled.needs_segments:
        dense = dense_segments(table, program.group_column)
        _check_max_candidates(program, table, dense)
        if dense.size and np.any(dense[1:] < dense[:-1]):
            order = np.argsort(dense, kind="stable")
            segments = dense[order]
            arrays = {k: v[order] for k, v in arrays.items()}
            veto = None if veto is None else veto[order]
        else:
            segments = dense
    pieces: list[list[np.ndarray]] = []
    for begin, end in _chunks(segments, n, chunk_rows):
        size = end - begin
        padded = _bucket(size)
        cols = {k: np.resize(v[begin:end], padded) if padded != size else v[begin:end]
                for k, v in arrays.items()}
        flags = None if veto is None else np.resize(veto[begin:end], padded)
        if segments is None:
            out = compiled.fn(cols, run_stats=run_stats, veto=flags)
        else:
            seg = segments[begin:end] - segments[begin]
            real = int(seg[-1]) + 1
            seg = np.concatenate([seg, np.full(padded - size, real, dtype=np.int32)])
            out = compiled.fn(cols, seg, _bucket(real + 1), indices_are_sorted=True,
                              run_stats=run_stats, veto=flags)
        pieces.append([np.asarray(x)[:size] for x in out])
    fields = list(zip(*pieces, strict=True)) if pieces else None
    merged = [np.concatenate(f) for f in fields] if fields else _empty(program)
    if order is not None:
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n)
        merged = [m[inverse] for m in merged]
    return _to_arrow(program, table, ids, merged)


def _empty(program: ContractProgram) -> list[np.ndarray]:
    k, c = len(program.stakeholders), len(program.clauses)
    f32, b = np.float32, bool
    return [np.zeros(0, f32), np.zeros((0, k), f32), np.zeros((0, c), b), np.zeros(0, b),
            np.zeros(0, f32), np.zeros(0, b), np.zeros(0, b)]


def _to_arrow(
    program: ContractProgram, table: pa.Table, ids: Sequence[str], merged: list[np.ndarray]
) -> pa.Table:
    reward, utilities, violations, veto, penalty, outside, ensures = merged
    columns: dict[str, Any] = {c: table.column(c) for c in ids}
    columns["reward"] = pa.array(reward, pa.float32())
    for i, s in enumerate(program.stakeholders):
        columns[f"u_{s.name}"] = pa.array(utilities[:, i], pa.float32())
    for j, c in enumerate(program.clauses):
        columns[f"v_{c.label}"] = pa.array(violations[:, j], pa.bool_())
    columns["veto"] = pa.array(veto, pa.bool_())
    columns["penalty"] = pa.array(penalty, pa.float32())
    columns["outside_bargaining_set"] = pa.array(outside, pa.bool_())
    columns["ensures_ok"] = pa.array(ensures, pa.bool_())
    return pa.table(columns)


def score_sql(
    program: ContractProgram,
    con: Any,
    relation: str,
    id_columns: Sequence[str] | None = None,
    order_by: Sequence[str] = (),
) -> pa.Table:
    """Score ``relation`` (a table/view/registered Arrow table in DuckDB ``con``) with the
    contract's own SQL.

    Rows come back in ``order_by`` order (unspecified without it for quantifier programs). A
    ``null_veto`` column of ``relation`` is ORed into ``veto``, as :func:`score_table` does.
    """
    available = con.sql(f"SELECT * FROM {quote_ident(relation)} LIMIT 0").columns
    ids = default_id_columns(program, available) if id_columns is None else list(id_columns)
    veto = NULL_VETO_COLUMN if NULL_VETO_COLUMN in available else None
    sql = compile_sql(program).select(relation, ids, order_by, veto_column=veto)
    return con.sql(sql).to_arrow_table()
