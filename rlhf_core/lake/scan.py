"""Parquet files named by local paths or lake URIs, opened as one DuckDB relation.

Local files go to DuckDB's own Parquet reader. Files on object storage (the ``s3://…`` URIs
:meth:`rlhf_core.lake.store.Lake.uri` hands out) are scanned as a pyarrow dataset through
pyarrow's filesystem and the lake's credentials, with projection and filter pushdown: DuckDB then
needs no ``httpfs`` extension, which it would have to download.

Parts of an encrypted lake (:mod:`rlhf_core.lake.encryption`) keep their ids and numbers in
plaintext, which DuckDB reads itself; a query that needs their text passes the ``lake``, and the
files are then scanned as a decrypting pyarrow dataset (DuckDB cannot unwrap pyarrow's keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from rlhf_core.lake.fs import is_local, resolve_paths
from rlhf_core.lake.store import Lake

__all__ = ["parquet_relation"]


def parquet_relation(con: duckdb.DuckDBPyConnection, paths: Sequence[str],
                     lake: Lake | None = None) -> duckdb.DuckDBPyRelation:
    """The Parquet files ``paths`` (all local, or all on one object store) as a DuckDB relation.

    Only the files' own columns are promised: a local scan may add hive partition columns
    (``run_id``) guessed from the paths, a remote one does not.

    Args:
        con: The DuckDB connection the relation belongs to.
        paths: Local paths or URIs of Parquet files with one schema.
        lake: The encrypted lake the files belong to, when the query reads their text (decrypted
            with its key); None reads them as they are.

    Returns:
        A relation over every row of ``paths``.

    Raises:
        LakeError: If the files are on different filesystems or a URI cannot be opened.
    """
    if lake is not None and lake.encryption.enabled:
        _, resolved = resolve_paths(paths)
        schema = pq.read_schema(resolved[0], filesystem=lake.fs)  # footers are plaintext
        return con.from_arrow(ds.dataset(resolved, schema=schema, format=lake.encryption.scan_format(),
                                         filesystem=lake.fs))
    if not any("://" in path for path in paths):
        return con.read_parquet(list(paths))
    filesystem, resolved = resolve_paths(paths)
    if is_local(filesystem):
        return con.read_parquet(resolved)
    return con.from_arrow(ds.dataset(resolved, format="parquet", filesystem=filesystem))
