"""DuckDB warehouse over the lake: ``<root>/warehouse.duckdb`` with one view per lake table.

Each view reads the table's published parts straight from Parquet
(``read_parquet('<root>/lake/<table>/run_id=*/part-*.parquet', hive_partitioning=true)``), so new
runs of an existing table are visible without touching the database; only a new table needs
:meth:`Warehouse.refresh_views`. The glob names ``part-*`` files only, so hidden temp, staging
and trash files are never read. Workers never open the shared ``.duckdb``: flows call
:meth:`Warehouse.refresh_views` once at the end, and :meth:`Warehouse.query` runs user SQL on a
read-only connection with bound ``?`` parameters.

On a lake on object storage (``s3://``) there is no ``warehouse.duckdb`` (a database file cannot
live on S3, and one per host would go stale): each query opens an in-memory DuckDB in which every
table the statement names is a pyarrow dataset over its committed parts (schemas unified across
runs, as ``union_by_name`` does), read through the lake's own pyarrow filesystem and credentials,
so DuckDB needs no ``httpfs`` extension (none to download); ``audit`` is the audit log object read
with ``read_json``. Same SQL, same views, same types.

On an encrypted lake (:mod:`rlhf_core.lake.encryption`) DuckDB's reader cannot unwrap pyarrow's
per-column keys. With ``RLHF_WIZARD_LAKE_PASSPHRASE`` set, :meth:`Warehouse.query` therefore takes
the in-memory route above, over pyarrow datasets that decrypt; without it, the views read the
files directly, which serves every query over ids and numeric columns (their footers and pages are
plaintext), and a query touching encrypted text fails with one line saying to set the passphrase.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs

from rlhf_core.errors import LakeError, first_line
from rlhf_core.lake.catalog import AUDIT_COLUMNS, AUDIT_LOG_PARTS
from rlhf_core.lake.fs import is_local
from rlhf_core.lake.store import PARTITION_KEY, Lake, check_table_name

WAREHOUSE_FILE = "warehouse.duckdb"
AUDIT_VIEW = "audit"
_LOCK_RETRIES = 20
_META_SCHEMA = "wizard_meta"
_RECORD = f"{_META_SCHEMA}.view_sources"
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

__all__ = ["AUDIT_VIEW", "WAREHOUSE_FILE", "Warehouse", "quote_identifier"]


def quote_identifier(name: str) -> str:
    """Double-quote an identifier after checking it against ``[A-Za-z_][A-Za-z0-9_]*``."""
    if not _IDENT_RE.match(name):
        raise LakeError(f"invalid SQL identifier {name!r}: use letters, digits and underscores")
    return f'"{name}"'


def _literal(text: str) -> str:
    """A SQL string literal (DDL such as CREATE VIEW cannot take bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


class Warehouse:
    """The lake's DuckDB warehouse.

    Args:
        lake: The lake (or its root) to cover; ``RLHF_WIZARD_HOME`` by default. For a lake on
            a remote filesystem the views live in an in-memory database rebuilt per connection.
    """

    def __init__(self, lake: Lake | str | os.PathLike[str] | None = None) -> None:
        self.lake = lake if isinstance(lake, Lake) else Lake(lake)
        self.path = self.lake.path(WAREHOUSE_FILE) if is_local(self.lake.fs) else None

    def _location(self, *parts: str) -> str:
        location = self.lake.path(*parts)
        return location if is_local(self.lake.fs) else f"{self.lake.root.rstrip('/')}/{'/'.join(parts)}"

    def view_sources(self) -> dict[str, str]:
        """The ``SELECT`` behind each view that should exist now (tables with visible data)."""
        sources = {}
        for table in self.lake.list_tables():
            if table == AUDIT_VIEW or not self.lake.has_data(table):
                continue
            if self.path is None:
                sources[table] = f"pyarrow dataset over {self.lake.uri(self.lake.table_path(table))}"
                continue
            glob = self._location("lake", check_table_name(table), f"{PARTITION_KEY}=*", "part-*.parquet")
            sources[table] = (
                f"SELECT * FROM read_parquet({_literal(glob)}, hive_partitioning = true, "
                f"hive_types = {{'{PARTITION_KEY}': 'VARCHAR'}}, union_by_name = true)"
            )
        audit_source = self._audit_source()
        if audit_source:
            sources[AUDIT_VIEW] = audit_source
        return sources

    def _audit_source(self) -> str | None:
        log = self.lake.path(*AUDIT_LOG_PARTS)
        if not self.lake.fs.get_file_info(log).size:
            return None
        if self.path is None:
            return f"read_json over {self.lake.uri(log)}"
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in AUDIT_COLUMNS.items())
        return (f"SELECT * FROM read_json({_literal(log)}, format = 'newline_delimited', "
                f"columns = {{{columns}}}) ORDER BY seq")

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection to the warehouse (retried while another process holds it)."""
        con = self._remote_connection() if self.path is None else self._open(read_only)
        try:
            yield con
        finally:
            con.close()

    def _decrypts(self) -> bool:
        """Whether queries must read through pyarrow: an encrypted lake whose key is at hand."""
        return self.lake.encryption.enabled and self.lake.encryption.crypto(required=False) is not None

    def _remote_connection(self, sql: str | None = None) -> duckdb.DuckDBPyConnection:
        """In-memory views over a remote (or decrypted) lake: the tables ``sql`` names (every
        table when None).

        Only the named tables are listed and opened, so a query costs requests for its own
        tables, not for the whole lake.
        """
        names = [*self.lake.list_tables(), AUDIT_VIEW]
        if sql is not None:
            names = [n for n in names if re.search(rf"\b{n}\b", sql, flags=re.IGNORECASE)]
        con = duckdb.connect(":memory:")
        try:
            for name in names:
                if name == AUDIT_VIEW:
                    self._register_audit(con)
                elif self.lake.has_data(name):
                    con.register(name, self.lake.dataset(name, unify=True))
        except BaseException:
            con.close()
            raise
        return con

    def _register_audit(self, con: duckdb.DuckDBPyConnection) -> None:
        log = self.lake.path(*AUDIT_LOG_PARTS)
        if self.lake.fs.get_file_info(log).type != pafs.FileType.File:
            return
        with self.lake.fs.open_input_stream(log) as stream:
            data = stream.read()
        con.read_json(io.BytesIO(data), format="newline_delimited",
                      columns=dict(AUDIT_COLUMNS)).order("seq").create_view(AUDIT_VIEW)

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        path = str(self.path)
        for attempt in range(_LOCK_RETRIES):
            try:
                return duckdb.connect(path, read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or attempt == _LOCK_RETRIES - 1:
                    raise LakeError(f"cannot open warehouse {self.path}: {exc}; close other "
                                    "processes using it and retry") from exc
                time.sleep(0.05 * (attempt + 1))
        raise LakeError(f"cannot open warehouse {self.path}")

    def _existing_views(self, con: duckdb.DuckDBPyConnection) -> set[str]:
        rows = con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        return {r[0] for r in rows}

    def _create_views(
        self, con: duckdb.DuckDBPyConnection, sources: Mapping[str, str], existing: set[str]
    ) -> None:
        for name in sorted(existing - set(sources)):
            con.sql(f"DROP VIEW IF EXISTS {quote_identifier(name)}")
        for name, source in sorted(sources.items()):
            con.sql(f"CREATE OR REPLACE VIEW {quote_identifier(name)} AS {source}")
        if self.path is not None:
            con.sql(f"CREATE SCHEMA IF NOT EXISTS {_META_SCHEMA}")
            con.sql(f"CREATE OR REPLACE TABLE {_RECORD} (name VARCHAR, source VARCHAR)")
            for name, source in sorted(sources.items()):
                con.sql(f"INSERT INTO {_RECORD} VALUES (?, ?)", params=[name, source])

    def _recorded_sources(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """The view sources the last refresh wrote (empty if never refreshed)."""
        tables = con.sql("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        if (_META_SCHEMA, "view_sources") not in set(tables):
            return {}
        return dict(con.sql(f"SELECT name, source FROM {_RECORD}").fetchall())

    def refresh_views(self) -> list[str]:
        """Create or replace a view per lake table (and the audit log); drop views of gone tables.

        Call from the flow (driver) after a run, never from workers. While another process
        holds the database it retries for about 10 s; :meth:`query` also refreshes by itself
        when the views are stale, so a flow may treat a failure here as non-fatal.

        Returns:
            The view names now defined.

        Raises:
            LakeError: If the database stayed locked by another process.
        """
        sources = self.view_sources()
        if self.path is not None:
            self.lake.fs.create_dir(self.lake.base, recursive=True)
            with self.connect() as con:
                self._create_views(con, sources, self._existing_views(con))
        return sorted(sources)

    def views(self) -> list[str]:
        """Names of the views currently defined in the warehouse."""
        if self.path is None:
            return sorted(self.view_sources())
        if self.lake.fs.get_file_info(self.path).type == pafs.FileType.NotFound:
            return []
        with self.connect(read_only=True) as con:
            return sorted(self._existing_views(con))

    def query(self, sql: str, params: Sequence[Any] | None = None, limit: int | None = None) -> pa.Table:
        """Run ``sql`` with bound ``?`` parameters on a read-only connection.

        Views are refreshed first if the set of lake tables changed since the last refresh.

        Args:
            sql: One SQL statement over the views (``SELECT ... FROM scores WHERE run_id = ?``).
            params: Values bound to the ``?`` placeholders, in order.
            limit: Return at most this many rows (streamed; the rest is never materialised).

        Returns:
            The result as a pyarrow table.

        Raises:
            LakeError: If the statement fails (the message names the available views).
        """
        if self.path is None or self._decrypts():
            con = self._remote_connection(sql)
            try:
                return self._run(con, sql, params, limit)
            finally:
                con.close()
        sources = self.view_sources()
        exists = self.lake.fs.get_file_info(self.path).type != pafs.FileType.NotFound
        con = self._open(read_only=True) if exists else None
        # Refresh when tables appeared or vanished, or the lake moved (views hold absolute paths).
        if con is None or self._recorded_sources(con) != sources:
            if con is not None:
                con.close()
            self.refresh_views()
            con = self._open(read_only=True)
        try:
            return self._run(con, sql, params, limit)
        finally:
            con.close()

    def _run(self, con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None,
             limit: int | None) -> pa.Table:
        try:
            relation = con.sql(sql, params=list(params) if params else None)
            if relation is None:
                return pa.table({})
            if limit is None:
                return relation.to_arrow_table()
            return _take(relation.to_arrow_reader(min(max(limit, 1), 100_000)), limit)
        except duckdb.Error as exc:
            first = first_line(exc)
            explained = self.lake.encryption.explain(exc, "query")
            if explained is not None:
                raise explained from exc
            raise LakeError(f"query failed: {first}; views: "
                            f"{', '.join(sorted(self._existing_views(con))) or 'none'}") from exc

    def select(
        self,
        view: str,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """``SELECT columns FROM view WHERE col = ? AND ...`` with allow-listed identifiers.

        Args:
            view: A view name (must exist).
            columns: Columns to return (must exist in the view); all by default.
            where: Equality filters, values bound as parameters.
            limit: Row limit.
        """
        available = self.view_sources()
        if view not in available:
            raise LakeError(f"no warehouse view {view!r}; views: {', '.join(sorted(available)) or 'none'}")
        known = set(self.query(f"SELECT * FROM {quote_identifier(view)} LIMIT 0").column_names)
        for name in [*(columns or []), *(where or {})]:
            if name not in known:
                raise LakeError(f"view {view!r} has no column {name!r}; columns: {', '.join(sorted(known))}")
        cols = ", ".join(quote_identifier(c) for c in columns) if columns else "*"
        sql = f"SELECT {cols} FROM {quote_identifier(view)}"
        if where:
            sql += " WHERE " + " AND ".join(f"{quote_identifier(c)} = ?" for c in where)
        return self.query(sql, list((where or {}).values()), limit=limit)


def _take(reader: pa.RecordBatchReader, limit: int) -> pa.Table:
    batches, rows = [], 0
    for batch in reader:
        if rows >= limit:
            break
        batch = batch.slice(0, limit - rows)
        batches.append(batch)
        rows += batch.num_rows
    return pa.Table.from_batches(batches, schema=reader.schema)
