"""The Parquet lake: explicit-schema tables, hive-partitioned by ``run_id``, written atomically.

Layout under the lake root (``RLHF_WIZARD_HOME``, default ``./.wizard``; any pyarrow filesystem
URI)::

    <root>/lake/<table>/run_id=<id>/part-00000.parquet     published parts (zstd)
    <root>/lake/<table>/run_id=<id>/.tmp-<uuid>-part-...    a part being written (hidden)
    <root>/lake/<table>/.staging-run_id=<id>/part-...       parts of a partition not yet committed

Visibility rule: readers (pyarrow datasets here, DuckDB views in :mod:`rlhf_core.lake.warehouse`)
only ever see complete files, because every part is written under a hidden temp name and renamed
into place. On an object store (``s3://``) a partition is visible only while its commit marker
``run_id=<id>/_committed.json`` exists (:mod:`rlhf_core.lake.commit`). Two ways to write:

* :meth:`Lake.write_part` publishes one shard file directly (each Dask task writes its own
  ``part-<n>``); re-writing the same ``(table, run_id, part)`` replaces it.
* ``staged=True`` parts go to a hidden staging directory and :meth:`Lake.commit_partition`
  swaps the whole partition in at once, so a run's partition is visible all-or-nothing and a
  re-run with fewer shards leaves no stale part behind. :meth:`Lake.write_partition` does both
  for a single-part partition.

A writer killed at any point leaves only hidden files; re-running the same run id is idempotent.

On an encrypted lake (``<root>/keys/master.key`` exists) the free-text columns of every part are
written encrypted and read back decrypted (:mod:`rlhf_core.lake.encryption`); code reading a part
file directly opens it with :meth:`Lake.open_part` so it gets the key too.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rlhf_core.errors import LakeError
from rlhf_core.lake.commit import (
    has_marker,
    mark_committed,
    publish_with_marker,
    remove_directory,
    swap_in_directory,
    unpublish,
    uses_commit_markers,
)
from rlhf_core.lake.encryption import KEY_FILE_PARTS, LakeEncryption
from rlhf_core.lake.fs import (
    atomic_write,
    is_local,
    remove_stale_temps,
    resolve_paths,
    resolve_root,
    write_bytes_atomic,
)
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
        self._marked = uses_commit_markers(self.fs)

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

    def uri(self, path: str) -> str:
        """A path on :attr:`fs` as a name any process can open without this object.

        The path itself on a local lake; on an object store the root's URI scheme and query
        (endpoint, region; never credentials, which come from the environment), e.g.
        ``s3://bucket/wizard/lake/scores/run_id=r1/part-00000.parquet?region=eu-west-1``.
        Tasks hand these to the next task; :func:`rlhf_core.lake.fs.resolve_paths` opens them.
        """
        if is_local(self.fs):
            return path
        parts = urlsplit(self.root)
        query = f"?{parts.query}" if parts.query else ""
        return f"{parts.scheme}://{path}{query}"

    def table_path(self, table: str) -> str:
        """Directory of ``table``: ``<root>/lake/<table>``."""
        return self.path("lake", check_table_name(table))

    def partition_path(self, table: str, run_id: str) -> str:
        """Directory of one run's partition: ``<root>/lake/<table>/run_id=<id>``."""
        return posixpath.join(self.table_path(table), f"{PARTITION_KEY}={check_run_id(run_id)}")

    def staging_path(self, table: str, run_id: str) -> str:
        """Hidden staging directory of a partition awaiting :meth:`commit_partition`."""
        return posixpath.join(self.table_path(table), f"{STAGING_PREFIX}{PARTITION_KEY}={check_run_id(run_id)}")

    @cached_property
    def encryption(self) -> LakeEncryption:
        """Whether this lake encrypts its text columns (checked once per lake object)."""
        return LakeEncryption(self.fs, self.path(*KEY_FILE_PARTS))

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
        encryption = self.encryption.write_properties(table, target, conformed.schema)
        atomic_write(
            self.fs,
            target,
            lambda tmp: pq.write_table(
                conformed, tmp, filesystem=self.fs, compression=COMPRESSION,
                use_dictionary=True if dictionary_columns is None else list(dictionary_columns),
                encryption_properties=encryption,
            ),
        )
        return self._published_directly(target, directory, staged)

    def _published_directly(self, target: str, directory: str, staged: bool) -> str:
        """A part written straight into its partition is visible at once, as on a local disk: on
        an object store that needs the partition's commit marker. Concurrent direct writers of one
        partition on an object store must stage their parts and commit instead."""
        if self._marked and not staged and not has_marker(self._list(directory)):
            mark_committed(self.fs, directory)
        return target

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
        encryption = self.encryption.write_properties(
            table, posixpath.join(directory, part_name(part)), full_schema)

        def _write(tmp: str) -> None:
            with pq.ParquetWriter(tmp, full_schema, filesystem=self.fs, compression=COMPRESSION,
                                  encryption_properties=encryption) as out:
                for chunk in batches:
                    out.write_table(conform(chunk, schema, where=f"{table} run {run_id}"))

        target = atomic_write(self.fs, posixpath.join(directory, part_name(part)), _write)
        return self._published_directly(target, directory, staged)

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
        if self._marked:
            publish_with_marker(self.fs, staging, final, sorted(staged))
        else:
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
        """Remove run ``run_id``'s partition of ``table``; returns whether it was visible."""
        final = self.partition_path(table, run_id)
        if self._marked:
            visible = bool(self.part_paths(table, run_id))
            if self._exists(final):
                unpublish(self.fs, final)
            return visible
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
        """Delete temp files and trash left by killed writers (only while no writer is active).

        On an object store this also removes unmarked partitions (a commit killed before its
        marker was written; never visible to readers).
        """
        base = self.table_path(table) if table else self.path("lake")
        removed = remove_stale_temps(self.fs, base)
        tables = [table] if table else self.list_tables()
        for name in tables:
            for info in self._list(self.table_path(name)):
                if info.base_name.startswith(TRASH_PREFIX):  # left by a commit killed mid-swap
                    self.fs.delete_dir(info.path)
                    removed.append(info.path)
                elif (self._marked and info.type == pafs.FileType.Directory
                      and self._run_of(info.base_name) and not has_marker(self._list(info.path))):
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
        """Visible part files of one partition, in part order (none while it is unmarked on an
        object store)."""
        entries = self._list(self.partition_path(table, run_id))
        if self._marked and not has_marker(entries):
            return []
        return sorted(i.path for i in entries
                      if i.type == pafs.FileType.File and PART_RE.match(i.base_name))

    @staticmethod
    def _run_of(directory_name: str) -> str | None:
        """The run id of a partition directory name ``run_id=<id>``, else None."""
        prefix = f"{PARTITION_KEY}="
        run_id = directory_name[len(prefix):]
        return run_id if directory_name.startswith(prefix) and RUN_ID_RE.match(run_id) else None

    def _partition_runs(self, table: str) -> Iterable[str]:
        """Run ids with a partition directory in ``table`` (visible or not), in listing order."""
        for info in self._list(self.table_path(table)):
            if info.type == pafs.FileType.Directory and (run_id := self._run_of(info.base_name)):
                yield run_id

    def list_runs(self, table: str) -> list[str]:
        """Run ids that have at least one visible part in ``table`` (sorted)."""
        return list(self.visible_parts(table))

    def has_data(self, table: str) -> bool:
        """Whether ``table`` has at least one visible part (stops at the first one found)."""
        return any(self.part_paths(table, r) for r in self._partition_runs(table))

    def visible_parts(self, table: str) -> dict[str, list[str]]:
        """Visible part files of ``table`` by run id (runs sorted, parts in part order)."""
        runs = {r: self.part_paths(table, r) for r in sorted(self._partition_runs(table))}
        return {r: parts for r, parts in runs.items() if parts}

    def dataset(self, table: str, schema: pa.Schema | None = None, *, unify: bool = False) -> ds.Dataset:
        """A pyarrow dataset over ``table`` with ``run_id`` (string) from the hive partitioning.

        Hidden files and directories (temp files, staging, trash) are ignored, and on an object
        store so are partitions without a commit marker.

        Args:
            table: Lake table name.
            schema: Optional explicit file schema (``run_id`` is appended); inferred otherwise.
            unify: Without ``schema``, unify the schemas of every run (one footer read per run;
                runs of one table may differ, e.g. ``scores`` of different contracts) instead of
                taking the first file's.

        Raises:
            LakeError: If the table does not exist or has no visible data, or ``unify`` meets
                runs whose column types conflict.
        """
        path = self.table_path(table)
        encrypted = self.encryption.enabled
        # Encrypted parts cannot be opened for schema discovery: the schema comes from footers.
        unify = unify or (encrypted and schema is None)
        parts = self.visible_parts(table) if self._marked or unify else None
        if not (parts if parts is not None else self.has_data(table)):
            raise LakeError(f"lake table {table!r} has no data under {path}; run the flow that "
                            f"writes it first (tables present: {', '.join(self.list_tables()) or 'none'})")
        if schema is None and unify and parts:
            schema = unified_schema(self.fs, [run_parts[0] for run_parts in parts.values()], table)
        if schema is not None and PARTITION_KEY not in schema.names:
            schema = schema.append(pa.field(PARTITION_KEY, pa.string()))
        fmt = self.encryption.scan_format() if encrypted else "parquet"
        if self._marked and parts:  # only marked partitions: name their parts, don't discover
            return ds.dataset([p for run_parts in parts.values() for p in run_parts], schema=schema,
                              format=fmt, filesystem=self.fs, partitioning=_HIVE,
                              partition_base_dir=path)
        return ds.dataset(path, schema=schema, format=fmt, filesystem=self.fs,
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
            LakeKeyError: If the read touches encrypted text without the lake's key.
        """
        if run_id is None:
            data = self.dataset(table)
        else:
            parts = self.part_paths(table, run_id)
            if not parts:
                raise LakeError(f"lake table {table!r} has no partition for run {run_id}; "
                                f"runs present: {', '.join(self.list_runs(table)) or 'none'}")
            # Only this partition's files are opened, however many runs the table holds.
            encrypted = self.encryption.enabled
            # An encrypted part cannot be opened for discovery; its plaintext footer has the schema.
            schema = (pq.read_schema(parts[0], filesystem=self.fs).append(
                pa.field(PARTITION_KEY, pa.string())) if encrypted else None)
            data = ds.dataset(parts, format=self.encryption.scan_format() if encrypted else "parquet",
                              schema=schema, filesystem=self.fs, partitioning=_HIVE,
                              partition_base_dir=self.table_path(table))
        try:
            return data.to_table(columns=columns, filter=filter)
        except OSError as exc:
            explained = self.encryption.explain(exc, f"lake table {table!r}")
            if explained is None:
                raise
            raise explained from None

    def open_part(self, path: str) -> pq.ParquetFile:
        """One part file of this lake (a path on :attr:`fs`), decrypting when the key is at hand."""
        return self.encryption.open_file(path) if self.encryption.enabled else pq.ParquetFile(
            path, filesystem=self.fs)

    def open_parquet(self, location: str) -> pq.ParquetFile:
        """A Parquet file named by a local path or a lake URI (as tasks hand them on), opened with
        :meth:`open_part` so a part of this encrypted lake decrypts (any other file reads as is)."""
        _, paths = resolve_paths([location])
        return self.open_part(paths[0])

    def read_part(self, path: str, columns: list[str] | None = None) -> pa.Table:
        """Every row of one part file (some columns), decrypted on an encrypted lake.

        Raises:
            LakeKeyError: If the read touches encrypted text without the lake's key.
        """
        try:
            return self.open_part(path).read(columns=columns)
        except OSError as exc:
            explained = self.encryption.explain(exc, path)
            if explained is None:
                raise
            raise explained from None

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
        if path not in self.part_paths(table, run_id):
            raise LakeError(f"no part {part} in lake table {table!r} run {run_id} ({path})")
        raw = pq.read_schema(path, filesystem=self.fs).metadata or {}
        return {k.decode(): v.decode() for k, v in raw.items() if k != b"ARROW:schema"}


def unified_schema(filesystem: pafs.FileSystem, paths: Sequence[str], table: str) -> pa.Schema:
    """One schema covering the Parquet files ``paths`` (columns of all; types promoted).

    Raises:
        LakeError: If two files give one column conflicting types.
    """
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(paths)))) as pool:
        schemas = list(pool.map(lambda p: pq.read_schema(p, filesystem=filesystem).remove_metadata(),
                                paths))
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise LakeError(f"runs of lake table {table!r} have conflicting column types ({exc}); "
                        "query the runs separately or rewrite the odd one out") from exc
