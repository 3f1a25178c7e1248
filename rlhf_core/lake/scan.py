"""Parquet files named by local paths or lake URIs, opened as one DuckDB relation.

Local files go to DuckDB's own Parquet reader. Files on object storage (the ``s3://…`` URIs
:meth:`rlhf_core.lake.store.Lake.uri` hands out) are scanned as a pyarrow dataset through
pyarrow's filesystem and the lake's credentials, with projection and filter pushdown: DuckDB then
needs no ``httpfs`` extension, which it would have to download.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow.dataset as ds

from rlhf_core.lake.fs import is_local, resolve_paths

__all__ = ["parquet_relation"]


def parquet_relation(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> duckdb.DuckDBPyRelation:
    """The Parquet files ``paths`` (all local, or all on one object store) as a DuckDB relation.

    Only the files' own columns are promised: a local scan may add hive partition columns
    (``run_id``) guessed from the paths, a remote one does not.

    Args:
        con: The DuckDB connection the relation belongs to.
        paths: Local paths or URIs of Parquet files with one schema.

    Returns:
        A relation over every row of ``paths``.

    Raises:
        LakeError: If the files are on different filesystems or a URI cannot be opened.
    """
    if not any("://" in path for path in paths):
        return con.read_parquet(list(paths))
    filesystem, resolved = resolve_paths(paths)
    if is_local(filesystem):
        return con.read_parquet(resolved)
    return con.from_arrow(ds.dataset(resolved, format="parquet", filesystem=filesystem))
