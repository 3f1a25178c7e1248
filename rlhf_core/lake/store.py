"""The Parquet lake: explicit-schema tables, hive-partitioned by ``run_id``, written atomically.

Layout under the lake root (``RLHF_WIZARD_HOME``, default ``./.wizard``; any pyarrow filesystem
URI)::

    <root>/lake/<table>/run_id=<id>/part-00000.parquet     published parts (zstd)
    <root>/lake/<table>/run_id=<id>/.tmp-<uuid>-part-...    a part being written (hidden)
    <root>/lake/<table>/.staging-run_id=<id>/part-...       parts of a partition not yet committed

Visibility rule: readers (pyarrow datasets here, DuckDB views in :mod:`rlhf_core.lake.warehouse`)
only ever see complete files, because every part is written under a hidden temp name and renamed
into place. Two ways to write:

* :meth:`Lake.write_part` publishes one shard file directly (each Dask task writes its own
  ``part-<n>``); re-writing the same ``(table, run_id, part)`` replaces it.
* ``staged=True`` parts go to a hidden staging directory and :meth:`Lake.commit_partition`
  swaps the whole partition in at once, so a run's partition is visible all-or-nothing and a
  re-run with fewer shards leaves no stale part behind. :meth:`Lake.write_partition` does both
  for a single-part partition.

A writer killed at any point leaves only hidden files; re-running the same run id is idempotent.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rlhf_core.errors import LakeError
from rlhf_core.lake.commit import remove_directory, swap_in_directory
from rlhf_core.lake.fs import atomic_write, remove_stale_temps, resolve_root, write_bytes_atomic
from rlhf_core.lake.names import (
    COMPRESSION,
    DEFAULT_HOME,
    ENV_HOME,
    PART_RE,
    PARTITION_KEY,
    RUN_ID_RE,
    STAGING_PREFIX,
    TABLE_RE,
    TRASH_PREFIX,
    check_run_id,
    check_table_name,
    part_name,
)
from rlhf_core.lake.schema_check import conform, stamp_schema

_HIVE = ds.partitioning(pa.schema([(PARTITION_KEY, pa.string())]), flavor="hive")

__all__ = [
    "COMPRESSION", "DEFAULT_HOME", "ENV_HOME", "PARTITION_KEY", "Lake", "check_run_id",
    "check_table_name", "part_name",
]


class Lake:
    """A Parquet lake rooted at a local path or pyarrow filesystem URI.

    Args:
        root: Lake root; defaults to ``$RLHF_WIZARD_HOME`` or ``./.wizard``.

    Attributes:
        root: The root as given (path or URI).
        fs: The pyarrow filesystem.
        base: The root's path on ``fs``.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = os.fspath(root) if root is not None else os.environ.get(ENV_HOME, DEFAULT_HOME)
        self.fs, self.base = resolve_root(self.root)

    @classmethod
    def from_env(cls) -> Lake:
        """The lake named by ``RLHF_WIZARD_HOME`` (default ``./.wizard``)."""
        return cls(None)

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- paths -----------------------------------------------------------------------------

    def path(self, *parts: str) -> str:
        """Path under the lake root on :attr:`fs`; rejects absolute parts and ``..``."""
        for part in parts:
            if part.startswith("/") or ".." in part.split("/"):
                raise LakeError(f"path {part!r} escapes the lake root {self.root}; use a relative path")
        return posixpath.join(self.base, *parts)

    def table_path(self, table: str) -> str:
        """Directory of ``table``: ``<root>/lake/<table>``."""
        return self.path("lake", check_table_name(table))

    def partition_path(self, table: str, run_id: str) -> str:
        """Directory of one run's partition: ``<root>/lake/<table>/run_id=<id>``."""
        return posixpath.join(self.table_path(table), f"{PARTITION_KEY}={check_run_id(run_id)}")

    def staging_path(self, table: str, run_id: str) -> str:
        """Hidden staging directory of a partition awaiting :meth:`commit_partition`."""
        return posixpath.join(self.table_path(table), f"{STAGING_PREFIX}{PARTITION_KEY}={check_run_id(run_id)}")

    def _exists(self, path: str, kind: pafs.FileType = pafs.FileType.Directory) -> bool:
        return self.fs.get_file_info(path).type == kind

    def _list(self, directory: str) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))

    # -- writing ---------------------------------------------------------------------------

    def write_part(
        self,
        table: str,
        run_id: str,
        data: pa.Table | pa.RecordBatch,
        schema: pa.Schema,
        *,
        part: int = 0,
        metadata: Mapping[str, str] | None = None,
        staged: bool = False,
        dictionary_columns: Sequence[str] | None = None,
    ) -> str:
        """Validate ``data`` against ``schema`` and publish it as one part file, atomically.

        Args:
            table: Lake table name.
            run_id: Run id (the hive partition value).
            data: Rows to write; columns may be in any order but names and types must match.
            schema: The table's explicit schema (must not contain ``run_id``).
            part: Shard index; the file is ``part-<part:05d>.parquet``.
            metadata: Extra Parquet key-value metadata (e.g. the contract hash).
            staged: Write into the hidden staging directory; visible after :meth:`commit_partition`.
            dictionary_columns: Dictionary-encode only these columns (default: every column);
                unique ids and floats gain nothing from dictionaries and cost write time.

        Returns:
            The path of the published (or staged) file.

        Raises:
            SchemaMismatchError: If ``data`` does not match ``schema`` (names the columns).
            LakeError: On invalid names or I/O failure.
        """
        conformed = self._prepare(table, run_id, data, schema, metadata)
        directory = self.staging_path(table, run_id) if staged else self.partition_path(table, run_id)
        target = posixpath.join(directory, part_name(part))
        return atomic_write(
            self.fs,
            target,
            lambda tmp: pq.write_table(
                conformed, tmp, filesystem=self.fs, compression=COMPRESSION,
                use_dictionary=True if dictionary_columns is None else list(dictionary_columns),
            ),
        )

    def write_batches(
        self,
        table: str,
        run_id: str,
        batches: Iterable[pa.RecordBatch | pa.Table],
        schema: pa.Schema,
        *,
        part: int = 0,
        metadata: Mapping[str, str] | None = None,
        staged: bool = False,
    ) -> str:
        """Stream chunks into one part file (for data larger than memory), published atomically.

        Same contract as :meth:`write_part`; every chunk is validated against ``schema``.
        """
        full_schema = stamp_schema(schema, table, run_id, metadata)
        directory = self.staging_path(table, run_id) if staged else self.partition_path(table, run_id)

        def _write(tmp: str) -> None:
            with pq.ParquetWriter(tmp, full_schema, filesystem=self.fs, compression=COMPRESSION) as out:
                for chunk in batches:
                    out.write_table(conform(chunk, schema, where=f"{table} run {run_id}"))

        return atomic_write(self.fs, posixpath.join(directory, part_name(part)), _write)

    def write_partition(
        self,
        table: str,
        run_id: str,
        data: pa.Table | pa.RecordBatch,
        schema: pa.Schema,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Replace run ``run_id``'s whole partition of ``table`` with ``data`` as a single part.

        Returns:
            The path of the published part file.
        """
        self.discard_staging(table, run_id)
        self.write_part(table, run_id, data, schema, metadata=metadata, staged=True)
        return self.commit_partition(table, run_id)[0]

    def commit_partition(self, table: str, run_id: str, expected_parts: int | None = None) -> list[str]:
        """Publish the staged parts of a partition all at once, replacing any previous partition.

        Args:
            table: Lake table name.
            run_id: Run id whose staging directory holds the parts.
            expected_parts: If given, publish exactly parts ``0..expected_parts-1``: missing
                ones are an error, extra staged ones (from an earlier attempt) are dropped, and
                if nothing is staged but the partition already holds exactly those parts, it
                returns them (a re-run after a completed commit).

        Returns:
            Paths of the published part files, in part order.

        Raises:
            LakeError: If nothing is staged or staged parts are missing.
        """
        staging = self.staging_path(table, run_id)
        staged = {i.base_name for i in self._list(staging) if PART_RE.match(i.base_name)}
        if expected_parts is not None:
            wanted = {part_name(i) for i in range(expected_parts)}
            published = self.part_paths(table, run_id)
            if not staged and {posixpath.basename(p) for p in published} == wanted:
                return published  # already committed by an earlier attempt: idempotent no-op
            missing = sorted(wanted - staged)
            if missing:
                raise LakeError(f"cannot commit table {table!r} run {run_id}: staged parts "
                                f"{missing} are missing; re-run the shards that write them")
            for stale in staged - wanted:  # shards of an earlier attempt with more shards
                self.fs.delete_file(posixpath.join(staging, stale))
            staged = wanted
        if not staged:
            raise LakeError(f"nothing staged for table {table!r} run {run_id} at {staging}; "
                            "write parts with staged=True before committing")
        final = self.partition_path(table, run_id)
        swap_in_directory(self.fs, staging, final, self._trash_path(table))
        return [posixpath.join(final, name) for name in sorted(staged)]

    def _trash_path(self, table: str) -> str:
        return posixpath.join(self.table_path(table), f"{TRASH_PREFIX}{uuid.uuid4().hex}")

    def discard_staging(self, table: str, run_id: str) -> None:
        """Remove the hidden staging directory of a partition (e.g. before a re-run)."""
        staging = self.staging_path(table, run_id)
        if self._exists(staging):
            self.fs.delete_dir(staging)

    def delete_partition(self, table: str, run_id: str) -> bool:
        """Remove run ``run_id``'s partition of ``table``; returns whether it existed."""
        final = self.partition_path(table, run_id)
        if not self._exists(final):
            return False
        remove_directory(self.fs, final, self._trash_path(table))
        return True

    def write_file_atomic(self, relpath: str, data: bytes | Iterable[bytes]) -> str:
        """Write a non-table artifact (HTML report, JSONL export, PNG) under the root atomically.

        Args:
            relpath: Path relative to the lake root, e.g. ``reports/<run_id>/report.html``.
            data: The full content or an iterable of byte chunks.

        Returns:
            The full path written on :attr:`fs`.
        """
        return write_bytes_atomic(self.fs, self.path(relpath), data)

    def remove_stale_temps(self, table: str | None = None) -> list[str]:
        """Delete temp files and trash left by killed writers (only while no writer is active)."""
        base = self.table_path(table) if table else self.path("lake")
        removed = remove_stale_temps(self.fs, base)
        tables = [table] if table else self.list_tables()
        for name in tables:
            for info in self._list(self.table_path(name)):
                if info.base_name.startswith(TRASH_PREFIX):  # left by a commit killed mid-swap
                    self.fs.delete_dir(info.path)
                    removed.append(info.path)
        return removed

    def _prepare(
        self, table: str, run_id: str, data: pa.Table | pa.RecordBatch, schema: pa.Schema,
        metadata: Mapping[str, str] | None,
    ) -> pa.Table:
        stamped = stamp_schema(schema, table, run_id, metadata)
        conformed = conform(data, schema, where=f"{table} run {run_id}")
        return conformed.replace_schema_metadata(stamped.metadata)

    # -- reading ---------------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        """Names of the tables that exist in the lake (sorted)."""
        return sorted(
            i.base_name for i in self._list(self.path("lake"))
            if i.type == pafs.FileType.Directory and TABLE_RE.match(i.base_name)
        )

    def part_paths(self, table: str, run_id: str) -> list[str]:
        """Visible part files of one partition, in part order."""
        return sorted(
            i.path for i in self._list(self.partition_path(table, run_id))
            if i.type == pafs.FileType.File and PART_RE.match(i.base_name)
        )

    def list_runs(self, table: str) -> list[str]:
        """Run ids that have at least one visible part in ``table`` (sorted)."""
        prefix = f"{PARTITION_KEY}="
        runs = []
        for info in self._list(self.table_path(table)):
            if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix):
                run_id = info.base_name[len(prefix):]
                if RUN_ID_RE.match(run_id) and self.part_paths(table, run_id):
                    runs.append(run_id)
        return sorted(runs)

    def has_data(self, table: str) -> bool:
        """Whether ``table`` has at least one visible part (stops at the first one found)."""
        prefix = f"{PARTITION_KEY}="
        return any(
            info.type == pafs.FileType.Directory and info.base_name.startswith(prefix)
            and RUN_ID_RE.match(info.base_name[len(prefix):])
            and self.part_paths(table, info.base_name[len(prefix):])
            for info in self._list(self.table_path(table))
        )

    def dataset(self, table: str, schema: pa.Schema | None = None) -> ds.Dataset:
        """A pyarrow dataset over ``table`` with ``run_id`` (string) from the hive partitioning.

        Hidden files and directories (temp files, staging, trash) are ignored.

        Args:
            table: Lake table name.
            schema: Optional explicit file schema (``run_id`` is appended); inferred otherwise.

        Raises:
            LakeError: If the table does not exist or has no visible data.
        """
        path = self.table_path(table)
        if not self.has_data(table):
            raise LakeError(f"lake table {table!r} has no data under {path}; run the flow that "
                            f"writes it first (tables present: {', '.join(self.list_tables()) or 'none'})")
        if schema is not None and PARTITION_KEY not in schema.names:
            schema = schema.append(pa.field(PARTITION_KEY, pa.string()))
        return ds.dataset(path, schema=schema, format="parquet", filesystem=self.fs,
                          partitioning=_HIVE, ignore_prefixes=[".", "_"])

    def read_table(
        self,
        table: str,
        run_id: str | None = None,
        columns: list[str] | None = None,
        filter: ds.Expression | None = None,
    ) -> pa.Table:
        """Read ``table`` (optionally one run, some columns, a pyarrow filter expression).

        Raises:
            LakeError: If the table or the requested run has no data.
        """
        if run_id is None:
            return self.dataset(table).to_table(columns=columns, filter=filter)
        parts = self.part_paths(table, run_id)
        if not parts:
            raise LakeError(f"lake table {table!r} has no partition for run {run_id}; "
                            f"runs present: {', '.join(self.list_runs(table)) or 'none'}")
        # Only this partition's files are opened, however many runs the table holds.
        data = ds.dataset(parts, format="parquet", filesystem=self.fs, partitioning=_HIVE,
                          partition_base_dir=self.table_path(table))
        return data.to_table(columns=columns, filter=filter)

    def read_run(self, table: str, run_id: str, columns: list[str] | None = None) -> pa.Table:
        """One run's rows of ``table`` in its stored schema (without the ``run_id`` partition column).

        Raises:
            LakeError: If the run has no partition of ``table``.
        """
        data = self.read_table(table, run_id=run_id, columns=columns)
        return data.drop_columns([PARTITION_KEY]) if PARTITION_KEY in data.column_names else data

    def count_rows(self, table: str, run_id: str | None = None) -> int:
        """Number of rows in ``table`` (or one run), from Parquet footers."""
        if run_id is not None:
            return sum(pq.ParquetFile(p, filesystem=self.fs).metadata.num_rows
                       for p in self.part_paths(table, run_id))
        return self.dataset(table).count_rows()

    def read_metadata(self, table: str, run_id: str, part: int = 0) -> dict[str, str]:
        """Parquet key-value metadata of one part file (decoded; excludes pyarrow's own schema)."""
        path = posixpath.join(self.partition_path(table, run_id), part_name(part))
        if not self._exists(path, pafs.FileType.File):
            raise LakeError(f"no part {part} in lake table {table!r} run {run_id} ({path})")
        raw = pq.read_schema(path, filesystem=self.fs).metadata or {}
        return {k.decode(): v.decode() for k, v in raw.items() if k != b"ARROW:schema"}
