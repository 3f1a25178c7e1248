"""Split Parquet input into scoring shards that never cut a prompt in two.

A shard is a list of (file, row group) pieces. Quantified clauses (FORALL / EXISTS over a prompt's
candidates) need every candidate of a prompt in the same shard, so when ``keep_groups`` is set,
pieces whose ``prompt_id`` ranges overlap (read from the Parquet row-group statistics — no data is
read) are merged into one shard before shards are packed up to ``target_rows``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rlhf_core.errors import DataError


@dataclass(frozen=True)
class Piece:
    """One row group of one Parquet file; ``digest`` fingerprints the whole file's bytes, so a
    task cached on its pieces never survives a change of the data."""

    path: str
    row_group: int
    num_rows: int
    group_min: str | None
    group_max: str | None
    digest: str = ""


@dataclass(frozen=True)
class Shard:
    """Pieces scored together by one task. ``index`` orders the output part files."""

    index: int
    pieces: tuple[Piece, ...]

    @property
    def num_rows(self) -> int:
        return sum(p.num_rows for p in self.pieces)


def list_pieces(
    paths: list[str], group_column: str, filesystem: pafs.FileSystem | None = None
) -> list[Piece]:
    """Row groups of ``paths`` with the min/max of ``group_column`` from their statistics.

    Raises:
        DataError: A file is not Parquet or lacks ``group_column``.
    """
    pieces: list[Piece] = []
    # hashlib releases the GIL on large blocks, so files are digested in parallel threads.
    try:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            digests = dict(zip(paths, pool.map(lambda p: file_digest(p, filesystem), paths), strict=True))
    except OSError as exc:
        raise DataError(f"cannot read input file: {exc}; check the input paths") from exc
    for path in paths:
        try:
            meta = pq.ParquetFile(path, filesystem=filesystem).metadata
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc}); check the input path") from exc
        names = meta.schema.names
        if group_column not in names:
            raise DataError(
                f"{path}: no column {group_column!r} (has {', '.join(names)}); "
                "map the prompt id column with an adapter or mapping file"
            )
        col = names.index(group_column)
        digest = digests[path]
        for rg in range(meta.num_row_groups):
            stats = meta.row_group(rg).column(col).statistics
            lo = hi = None
            if stats is not None and stats.has_min_max:
                lo, hi = _as_str(stats.min), _as_str(stats.max)
            pieces.append(Piece(path, rg, meta.row_group(rg).num_rows, lo, hi, digest))
    return pieces


def file_digest(path: str, filesystem: pafs.FileSystem | None = None) -> str:
    """BLAKE2b-128 of a file's bytes (read in 8 MiB blocks); ``path`` may be a lake URI."""
    fs = filesystem or pafs.LocalFileSystem()
    if filesystem is None and "://" in path:
        fs, path = pafs.FileSystem.from_uri(path)
    h = hashlib.blake2b(digest_size=16)
    with fs.open_input_stream(path) as stream:
        while block := stream.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def _as_str(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def plan_shards(pieces: list[Piece], target_rows: int, keep_groups: bool) -> list[Shard]:
    """Pack pieces into shards of about ``target_rows`` rows.

    Args:
        pieces: Row groups in file order.
        target_rows: Rows per shard: a shard is closed as soon as it holds at least this many
            rows (so ``total / k`` rows per shard gives at most ``k`` shards).
        keep_groups: Merge pieces whose group ranges overlap (required for quantifiers). Pieces
            without statistics are then all merged into one shard, which is always correct.

    Returns:
        Shards in a deterministic order.
    """
    if target_rows < 1:
        raise ValueError(f"target_rows must be >= 1, got {target_rows}")
    units = _group_units(pieces) if keep_groups else [[p] for p in pieces]
    shards: list[Shard] = []
    current: list[Piece] = []
    rows = 0
    for unit in units:
        current.extend(unit)
        rows += sum(p.num_rows for p in unit)
        if rows >= target_rows:
            shards.append(Shard(len(shards), tuple(current)))
            current, rows = [], 0
    if current:
        shards.append(Shard(len(shards), tuple(current)))
    return shards


def _group_units(pieces: list[Piece]) -> list[list[Piece]]:
    """Connected components of pieces with overlapping [min, max] group ranges."""
    if any(p.group_min is None for p in pieces):
        return [list(pieces)] if pieces else []
    order = sorted(pieces, key=lambda p: (p.group_min, p.group_max, p.path, p.row_group))
    units: list[list[Piece]] = []
    high: str | None = None
    for piece in order:
        if units and high is not None and piece.group_min <= high:
            units[-1].append(piece)
            high = max(high, piece.group_max)  # type: ignore[type-var]
        else:
            units.append([piece])
            high = piece.group_max
    return units


def read_shard(shard: Shard, columns: list[str], filesystem: pafs.FileSystem | None = None,
               optional: Sequence[str] = (),
               open_file: Callable[[str], pq.ParquetFile] | None = None) -> pa.Table:
    """Read ``columns`` of a shard's row groups, in piece order, as one table.

    ``optional`` columns are read from the files that have them (null in the rows of the others).
    ``open_file`` opens a piece's file instead of ``pq.ParquetFile`` (e.g.
    :meth:`rlhf_core.lake.store.Lake.open_parquet`, which decrypts an encrypted lake's text).

    Raises:
        DataError: A file lacks one of ``columns`` (names the file and the missing columns).
    """
    tables = []
    handles: dict[str, pq.ParquetFile] = {}
    wanted: dict[str, list[str]] = {}
    for piece in shard.pieces:
        handle = handles.get(piece.path)
        if handle is None:
            handle = handles[piece.path] = (open_file(piece.path) if open_file is not None else
                                            pq.ParquetFile(piece.path, filesystem=filesystem))
            names = set(handle.schema_arrow.names)
            missing = sorted(set(columns) - names)
            if missing:
                raise DataError(
                    f"{piece.path}: missing input column(s) {missing} required by the contract; "
                    "add them to the data or map them with an adapter"
                )
            wanted[piece.path] = [*columns, *(c for c in optional if c in names and c not in columns)]
        tables.append(handle.read_row_group(piece.row_group, columns=wanted[piece.path]))
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default" if optional else "none")
