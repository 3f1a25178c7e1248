"""Streaming writers of export data files: Parquet (zstd, key-value metadata) and JSON Lines.

A sink takes Arrow tables one after the other and never holds more than a row group, so an export
of any size runs in bounded memory; :func:`prefetch` overlaps producing the next tables with
writing the current ones. JSON Lines are encoded by DuckDB (``to_json`` per row, in
order) and written straight from the Arrow result buffer: nested columns (chat messages) become
JSON arrays of objects, and no Python object is made per row.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO, Protocol, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["JsonlSink", "ParquetSink", "Sink", "open_sink", "prefetch"]

T = TypeVar("T")

def _export_pool() -> pa.MemoryPool:
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow build without jemalloc
        return pa.default_memory_pool()


EXPORT_POOL = _export_pool()
"""Arrow memory pool of the export's large per-batch buffers (row selection, lengths, Parquet
encoding): jemalloc, which reuses freed memory. With pyarrow's default (mimalloc) on Linux with
transparent huge pages, each batch's fresh buffers were zeroed again by the kernel: about a
tenth of an export's CPU time in ``perf`` (``clear_page_erms``)."""

ROW_GROUP_ROWS = 1_048_576
ROW_GROUP_BYTES = 128 << 20
"""A Parquet row group is written once ``ROW_GROUP_ROWS`` rows or ``ROW_GROUP_BYTES`` of Arrow data
are buffered (pyarrow's default row count; the byte bound keeps long texts in bounded memory)."""


class Sink(Protocol):
    """A data file being written: ``write`` tables in order, then ``close`` once."""

    rows: int
    nbytes: int

    def write(self, table: pa.Table) -> None:
        """Append ``table``'s rows."""

    def close(self, metadata: Mapping[str, str]) -> None:
        """Finish the file; Parquet adds ``metadata`` to its footer's key-value metadata."""


FREE_TEXT = frozenset({"prompt", "chosen", "rejected", "completion", "chosen_response", "rejected_response"})
"""Columns of free text: written without dictionary encoding and min/max statistics (a
dictionary of unique texts is built and thrown away at 1 MiB, and text bounds help no reader);
this saves about a sixth of the encoding time. Every other column keeps pyarrow's defaults."""


class ParquetSink:
    """A zstd Parquet file in one explicit schema.

    Key-value metadata known up front travels in the schema (``pq.read_schema(path).metadata``);
    what is only known at the end (provenance waiting on input digests) is added to the footer
    (``pq.ParquetFile(path).metadata.metadata``). Columns in :data:`FREE_TEXT` (and nested ones)
    get neither dictionary encoding nor statistics.

    Attributes:
        rows: Rows written so far.
        nbytes: Their Arrow (uncompressed, in-memory) size in bytes.
    """

    def __init__(self, path: str, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        coded = [f.name for f in schema if f.name not in FREE_TEXT and not pa.types.is_nested(f.type)]
        self._writer = pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=coded,
                                        write_statistics=coded, memory_pool=EXPORT_POOL)
        self._schema = schema
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._row_group_rows = row_group_rows
        self.rows = 0
        self.nbytes = 0

    def write(self, table: pa.Table) -> None:
        """Buffer ``table`` and write full row groups."""
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        self.nbytes += table.nbytes
        self._pending_bytes += table.nbytes
        if self._pending_rows >= self._row_group_rows or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self._row_group_rows)
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def close(self, metadata: Mapping[str, str]) -> None:
        """Write the buffered rows and the footer, adding ``metadata``."""
        self._flush()
        self._writer.add_key_value_metadata(dict(metadata))
        self._writer.close()


def _string_bytes(array: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array's values, without copying."""
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=offset_type, count=len(array) + 1,
                            offset=array.offset * np.dtype(offset_type).itemsize)
    data = array.buffers()[2]
    return memoryview(data)[int(offsets[0]):int(offsets[-1])] if data is not None else memoryview(b"")


class JsonlSink:
    """A JSON Lines file: one JSON object per row, keys in column order, UTF-8.

    Attributes:
        rows: Rows written so far.
        nbytes: Their Arrow (uncompressed, in-memory) size in bytes.
    """

    def __init__(self, path: str) -> None:
        self._out: BinaryIO = open(path, "wb")  # closed by close()
        self._con = duckdb.connect()
        self.rows = 0
        self.nbytes = 0

    def write(self, table: pa.Table) -> None:
        """Encode ``table``'s rows and append them."""
        if table.num_rows == 0:
            return
        self._con.register("export_rows", table)
        try:
            lines = self._con.sql("SELECT to_json(r) || chr(10) AS line FROM export_rows r").to_arrow_table()
        finally:
            self._con.unregister("export_rows")
        for chunk in lines.column("line").chunks:
            self._out.write(_string_bytes(chunk))
        self.rows += table.num_rows
        self.nbytes += table.nbytes

    def close(self, metadata: Mapping[str, str]) -> None:
        """Close the file (JSON Lines has no place for ``metadata``; the card and manifest do)."""
        self._out.close()
        self._con.close()


def open_sink(path: str, kind: str, schema: pa.Schema) -> Sink:
    """A ``parquet`` or ``jsonl`` sink writing ``path`` (``schema`` may carry metadata).

    Raises:
        ValueError: For another kind.
    """
    if kind == "parquet":
        return ParquetSink(path, schema)
    if kind == "jsonl":
        return JsonlSink(path)
    raise ValueError(f"unknown data file kind {kind!r}; use parquet or jsonl")


_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead of the consumer.

    An export reads, splits and converts the next batches (Arrow releases the GIL) while the
    caller's thread encodes and writes the current one, so reading costs little wall time on
    top of writing. An exception in the producer is raised in the consumer; a consumer that
    stops early (an exception of its own) stops the producer at its next item.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(exc)

    worker = threading.Thread(target=produce, name="export-prefetch", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
