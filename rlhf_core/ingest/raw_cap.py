"""A size cap on the raw records kept in ``quarantine``.

A quarantined row keeps its source record so it can be inspected and fixed, but a record can be
arbitrarily large (a whole file read as one line, a multi-megabyte conversation) and is often
text nobody should copy around in full. Records longer than :data:`RAW_RECORD_MAX_BYTES` bytes of
UTF-8 keep their first bytes (cut on a character boundary) followed by a marker that gives the
original size, so ``rlhf-wizard data quarantine`` still shows what the row was.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

RAW_RECORD_MAX_BYTES = 4096
"""Largest raw record kept whole (UTF-8 bytes); longer ones are truncated with a marker."""
TRUNCATED_MARKER = "…[truncated: {size} bytes in all]"
"""Appended to a truncated record; ``{size}`` is the original length in UTF-8 bytes."""

__all__ = ["RAW_RECORD_MAX_BYTES", "TRUNCATED_MARKER", "cap_record", "cap_records"]


def cap_record(text: str, limit: int = RAW_RECORD_MAX_BYTES) -> str:
    """``text`` if it fits in ``limit`` UTF-8 bytes, else its first ``limit`` bytes (whole
    characters only) and the marker with the original size."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    head = data[:limit].decode("utf-8", "ignore")  # drops a character cut in half
    return head + TRUNCATED_MARKER.format(size=len(data))


def cap_records(table: pa.Table, column: str = "record",
                limit: int = RAW_RECORD_MAX_BYTES) -> pa.Table:
    """``table`` with every value of ``column`` capped by :func:`cap_record` (one vectorised
    length check; only the long values are rebuilt)."""
    if table.num_rows == 0:
        return table
    values = table.column(column)
    long = pc.fill_null(pc.greater(pc.binary_length(values), limit), False)
    if not pc.any(long).as_py():
        return table
    capped = [None if v is None else cap_record(v, limit) if too_long else v
              for v, too_long in zip(values.to_pylist(), long.to_pylist(), strict=True)]
    index = table.schema.get_field_index(column)
    return table.set_column(index, table.schema.field(index), pa.array(capped, values.type))
