"""Check a table against an explicit pyarrow schema before it is written to the lake."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from rlhf_core.errors import SchemaMismatchError
from rlhf_core.lake.names import (
    META_RUN_ID,
    META_TABLE,
    PARTITION_KEY,
    check_run_id,
    check_table_name,
)

__all__ = ["conform", "schema_problems", "stamp_schema"]


def schema_problems(data: pa.Table, schema: pa.Schema) -> list[str]:
    """Differences between ``data`` and ``schema``, one readable phrase per problem.

    Checks missing and unexpected columns, exact types, and nulls in non-nullable fields.
    Column order does not matter.

    Args:
        data: The table to check.
        schema: The schema it must match.

    Returns:
        An empty list when ``data`` conforms.
    """
    names = set(data.schema.names)
    problems = []
    missing = [n for n in schema.names if n not in names]
    extra = [n for n in data.schema.names if n not in set(schema.names)]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    wrong = []
    nulls = []
    for field in schema:
        if field.name not in names:
            continue
        actual = data.schema.field(field.name)
        if not actual.type.equals(field.type):
            wrong.append(f"{field.name} is {actual.type}, expected {field.type}")
        elif not field.nullable and data.column(field.name).null_count:
            nulls.append(f"{field.name} has {data.column(field.name).null_count} nulls")
    if wrong:
        problems.append("wrong types: " + "; ".join(wrong))
    if nulls:
        problems.append("nulls in non-nullable columns: " + "; ".join(nulls))
    return problems


def conform(data: pa.Table | pa.RecordBatch, schema: pa.Schema, where: str = "table") -> pa.Table:
    """Return ``data`` with its columns in ``schema`` order and ``schema``'s fields, or raise.

    Args:
        data: Table or record batch to validate.
        schema: The explicit schema of the destination.
        where: What is being written (table name and run id), used in the error message.

    Returns:
        A table whose schema equals ``schema`` (including nullability and field metadata).

    Raises:
        SchemaMismatchError: Naming every missing, unexpected, mistyped or null-violating column.
    """
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        raise SchemaMismatchError(f"{where}: expected a pyarrow Table or RecordBatch, got "
                                  f"{type(data).__name__}; convert with pa.Table.from_pandas/from_pydict")
    problems = schema_problems(data, schema)
    if problems:
        raise SchemaMismatchError(f"{where} does not match its schema: {'; '.join(problems)}; "
                                  "fix the writer or cast the data to the table's schema")
    return data.select(schema.names).cast(schema.remove_metadata()).replace_schema_metadata(schema.metadata)


def stamp_schema(
    schema: pa.Schema, table: str, run_id: str, metadata: Mapping[str, str] | None = None
) -> pa.Schema:
    """``schema`` with the table name, run id and ``metadata`` added to its key-value metadata.

    Raises:
        LakeError: If the table name or run id is invalid.
        SchemaMismatchError: If the schema has a ``run_id`` column (that is the partition key).
    """
    check_table_name(table)
    check_run_id(run_id)
    if PARTITION_KEY in schema.names:
        raise SchemaMismatchError(f"schema of lake table {table!r} has a {PARTITION_KEY!r} "
                                  "column; the lake stores it as the partition key, remove it")
    merged = dict(schema.metadata or {})
    merged.update({str(k).encode(): str(v).encode() for k, v in (metadata or {}).items()})
    merged[META_TABLE.encode()] = table.encode()
    merged[META_RUN_ID.encode()] = run_id.encode()
    return schema.with_metadata(merged)
