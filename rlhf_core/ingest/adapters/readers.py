"""Streaming readers for JSON Lines, CSV and Parquet that never raise on a bad row.

Each reader yields :class:`SourceRow` objects with 1-based line numbers; a row that cannot be
decoded (bad UTF-8, bad or truncated JSON, not an object) is yielded with ``record=None`` and the
:class:`RecordError` saying why, so the ingest loop can quarantine it and carry on. Files are read
incrementally (line by line, or record batch by record batch), never whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters.records import RecordError, SourceRow


def _open_binary(path: Path):
    try:
        return path.open("rb")
    except OSError as exc:
        raise DataError(
            f"{path}: cannot open source file ({exc.strerror}); check the path"
        ) from None


def _decode_json_line(line_no: int, data: bytes, *, last: bool) -> SourceRow:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raw = data.decode("utf-8", "backslashreplace")
        return SourceRow(
            line_no, raw, None, RecordError("bad_utf8", f"invalid UTF-8 byte at offset {exc.start}")
        )
    stripped = text.rstrip("\r\n")
    try:
        record = json.loads(stripped)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(stripped.rstrip()) or exc.msg.startswith("Unterminated string")
        if at_end or (last and not data.endswith(b"\n")):
            error = RecordError(
                "truncated_line", f"JSON ends early at column {exc.colno}: {exc.msg}"
            )
        else:
            error = RecordError("bad_json", f"{exc.msg} at column {exc.colno}")
        return SourceRow(line_no, stripped, None, error)
    if not isinstance(record, dict):
        return SourceRow(
            line_no,
            stripped,
            None,
            RecordError(
                "not_an_object", f"line holds a JSON {type(record).__name__}, not an object"
            ),
        )
    return SourceRow(line_no, stripped, record)


def iter_jsonl(path: str | Path) -> Iterator[SourceRow]:
    """Yield the rows of a JSON Lines file; blank lines are skipped (and not counted)."""
    path = Path(path)
    with _open_binary(path) as handle:
        previous: tuple[int, bytes] | None = None
        for line_no, data in enumerate(handle, start=1):
            if previous is not None:
                yield _decode_json_line(*previous, last=False)
                previous = None
            if data.strip():
                previous = (line_no, data)
        if previous is not None:
            yield _decode_json_line(*previous, last=True)


def iter_csv(path: str | Path, *, delimiter: str = ",") -> Iterator[SourceRow]:
    """Yield the rows of a CSV file with a header; ``line`` is the record's first physical line.

    Empty cells become ``None``. Bytes that are not UTF-8 surface as ``bad_utf8`` rows.
    """
    path = Path(path)
    with _open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:1: cannot read the CSV header ({exc})") from None
        while True:
            line_no = reader.line_num + 1  # first physical line of the record (cells may span lines)
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield SourceRow(line_no, "", None, RecordError("bad_csv", str(exc)))
                continue
            raw = json.dumps(dict(zip(header, cells, strict=False)), ensure_ascii=False)
            if any(_has_surrogate(cell) for cell in cells):
                raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                yield SourceRow(
                    line_no,
                    raw,
                    None,
                    RecordError("bad_utf8", "row contains bytes that are not valid UTF-8"),
                )
                continue
            if len(cells) != len(header):
                error = RecordError(
                    "truncated_line", f"row has {len(cells)} cells, header has {len(header)}"
                )
                yield SourceRow(line_no, raw, None, error)
                continue
            yield SourceRow(
                line_no,
                raw,
                {k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)},
            )


def _has_surrogate(cell: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in cell)


def iter_parquet(path: str | Path, *, batch_size: int = 65_536) -> Iterator[SourceRow]:
    """Yield the rows of a Parquet file batch by batch; ``line`` is the 1-based row number."""
    path = Path(path)
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read Parquet ({exc}); check the file") from None
    yield from _rows_of_batches(parquet.iter_batches(batch_size=batch_size))


def rows_of_table(table: pa.Table, *, batch_size: int = 65_536) -> Iterator[SourceRow]:
    """Yield the rows of an Arrow table (e.g. a SQL mapping's result); ``line`` is the row number."""
    return _rows_of_batches(table.to_batches(max_chunksize=batch_size))


def _rows_of_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[SourceRow]:
    line_no = 0
    for batch in batches:
        for record in batch.to_pylist():
            line_no += 1
            raw = json.dumps(record, ensure_ascii=False, default=_json_default)
            yield SourceRow(line_no, raw, record)


def _json_default(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
