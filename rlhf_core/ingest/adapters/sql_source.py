"""SQL mappings: a DuckDB query over the source file, run in a sandbox that can read nothing else.

A mapping may give ``sql:``, a query over the view ``source`` (the source file as read by its
``format``) that returns the columns the rest of the mapping names. It flattens message trees
(self-joins on parent ids), reads list-position labels, unnests and renames, without code.

The query never touches the filesystem itself: the source is read here (pyarrow) and registered
as an Arrow table; then the connection is locked down before the user's SQL runs —
``enable_external_access = false`` (no file, URL or extension access: ``read_csv('/etc/passwd')``,
``glob``, ``'x.parquet'``, ``INSTALL``/``LOAD``) and ``lock_configuration = true`` (no ``SET``
can undo it). Only one ``SELECT`` (``WITH`` included) statement is accepted, so ``COPY``,
``ATTACH``, ``PRAGMA``, ``SET``, ``CREATE`` and friends are refused before anything runs. A memory
limit and a deadline (the query is interrupted) bound it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from rlhf_core.errors import DataError

SOURCE_VIEW = "source"
SQL_TIMEOUT_S = 600.0
SQL_MEMORY_LIMIT = "4GB"


class SqlMappingError(DataError):
    """A mapping's ``sql`` was refused or failed; the message names the mapping file."""


def huggingface_files(folder: Path, split: str) -> list[Path]:
    """The Parquet shards of ``split`` in a Hugging Face dataset folder: ``data/<split>-*.parquet``.

    Raises:
        DataError: None found (the message lists the splits that exist).
    """
    data = folder / "data"
    files = sorted(data.glob(f"{split}-*.parquet"))
    if not files:
        splits = sorted({p.name.split("-", 1)[0] for p in data.glob("*.parquet")})
        raise DataError(f"{folder}: no data/{split}-*.parquet in this Hugging Face dataset folder"
                        f"; splits present: {', '.join(splits) or 'none'} (choose one with --split)")
    return files


def read_source_table(path: Path, fmt: str, *, split: str = "train",
                      csv_delimiter: str = ",") -> pa.Table:
    """Read a whole source file (or dataset folder) as an Arrow table for a SQL mapping.

    Raises:
        DataError: The file cannot be read in that format (naming it).
    """
    try:
        if fmt == "huggingface":
            files = huggingface_files(path, split)
            return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
        if fmt == "parquet":
            return pq.read_table(path)
        if fmt == "csv":
            return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=csv_delimiter))
        return pajson.read_json(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read it as {fmt} for the mapping's sql ({exc}); check the "
                        "file and the mapping's format") from None


def run_mapping_sql(source: pa.Table, sql: str, mapping_path: str | Path, *,
                    timeout_s: float = SQL_TIMEOUT_S) -> pa.Table:
    """Run a mapping's query over ``source`` (the view ``source``) in a locked-down DuckDB.

    Args:
        source: The source rows.
        sql: One SELECT statement.
        mapping_path: The mapping file, named in every error.
        timeout_s: The query is interrupted after this many seconds.

    Returns:
        The query's result.

    Raises:
        SqlMappingError: Not exactly one SELECT, a refused operation, a SQL error, or the deadline.
    """
    import duckdb

    where = f"{mapping_path}: sql"
    con = duckdb.connect(":memory:")
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise SqlMappingError(f"{where}: {_first_line(exc)}; fix the query") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = ", ".join(s.type.name for s in statements) or "nothing"
            raise SqlMappingError(
                f"{where}: must be exactly one SELECT query over the view '{SOURCE_VIEW}' "
                f"(got {kinds}); COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA and writes are not "
                "allowed")
        con.register("__source_arrow", source)
        con.execute(f"CREATE VIEW {SOURCE_VIEW} AS SELECT * FROM __source_arrow")
        con.execute(f"SET memory_limit = '{SQL_MEMORY_LIMIT}'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.InterruptException:
            raise SqlMappingError(f"{where}: still running after {timeout_s:.0f} s (interrupted);"
                                  " simplify the query (a join without its key?)") from None
        except duckdb.PermissionException as exc:
            raise SqlMappingError(
                f"{where}: refused: {_first_line(exc)}; a mapping's query can read only the view "
                f"'{SOURCE_VIEW}' (the source file)") from None
        except duckdb.Error as exc:
            raise SqlMappingError(f"{where}: {_first_line(exc)}; fix the query") from None
        finally:
            timer.cancel()
    finally:
        con.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
