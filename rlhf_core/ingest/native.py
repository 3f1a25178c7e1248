"""Ingest Parquet that is already in the normalised ``responses`` shape (the generator's output).

A dataset folder may carry its preference labels in a ``preferences/`` sub-folder of Parquet
files in the normalised ``preferences`` shape (the generator writes them when asked to draw
labels); they are read as the run's pairs and go through the same quality gate.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters.base import IngestResult
from rlhf_core.ingest.generator import PREFERENCES_DIR
from rlhf_core.lake.catalog import QUARANTINE_SCHEMA
from rlhf_core.lake.schemas import (
    NULL_VETO_COLUMN,
    PREFERENCE_BASE_FIELDS,
    PROMPT_MESSAGES_FIELD,
    RESPONSE_BASE_FIELDS,
    preference_label_columns,
    preferences_schema,
    response_attribute_columns,
    responses_schema,
    user_turns,
)


def parquet_files(source: str | Path) -> list[str]:
    """The ``*.parquet`` files of ``source`` (a file, or a directory read recursively), sorted.

    Raises:
        DataError: Nothing to read.
    """
    path = Path(source)
    if path.is_file():
        return [str(path)]
    files = sorted(str(p) for p in path.rglob("*.parquet") if not p.name.startswith(".")
                   and PREFERENCES_DIR not in p.relative_to(path).parts[:-1])
    if not files:
        raise DataError(f"{source}: no Parquet files found; generate data with "
                        "`rlhf-wizard data generate` or pass --adapter/--mapping for other formats")
    return files


def read_native_responses(source: str | Path, *, run_id: str) -> IngestResult:
    """Read normalised responses Parquet; every row is a candidate for the quality gates.

    Files without ``prompt_messages`` (written before it existed, or by other tools) get the
    single user turn ``[{"role": "user", "content": prompt}]``.

    Raises:
        DataError: A base column is missing or has the wrong type (names file and column).
    """
    files = parquet_files(source)
    table = ds.dataset(files, format="parquet").to_table()
    names = set(table.schema.names)
    missing = [f.name for f in RESPONSE_BASE_FIELDS if f.name not in names]
    if missing:
        raise DataError(f"{source}: not a normalised responses table, missing {missing}; use "
                        "--adapter NAME or --mapping FILE to ingest other data")
    if PROMPT_MESSAGES_FIELD.name not in names:  # written before conversations were kept
        table = table.append_column(PROMPT_MESSAGES_FIELD, user_turns(table.column("prompt")))
    attributes = [table.schema.field(n) for n in response_attribute_columns(table.schema)]
    schema = responses_schema(attributes)
    if NULL_VETO_COLUMN in names:  # re-ingested lake data keeps its vetoes
        schema = schema.append(pa.field(NULL_VETO_COLUMN, pa.bool_()))
    try:
        table = table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{source}: columns do not match the responses schema ({exc})") from exc
    table = table.set_column(schema.get_field_index("ingest_run"), "ingest_run",
                             _constant(run_id, table.num_rows))
    return IngestResult(
        responses=table,
        preferences=_native_preferences(source, run_id),
        quarantine=QUARANTINE_SCHEMA.empty_table(),
        rows_read=table.num_rows,
        rows_accepted=table.num_rows,
    )


def _native_preferences(source: str | Path, run_id: str) -> pa.Table:
    """``<source>/preferences/*.parquet`` as a ``preferences`` table (empty when absent).

    Raises:
        DataError: The files lack a base pair column or a label column is not an integer.
    """
    folder = Path(source) / PREFERENCES_DIR
    files = sorted(str(p) for p in folder.glob("*.parquet") if not p.name.startswith(".")) \
        if folder.is_dir() else []
    if not files:
        return preferences_schema([]).empty_table()
    table = ds.dataset(files, format="parquet").to_table()
    missing = [f.name for f in PREFERENCE_BASE_FIELDS if f.name not in table.schema.names]
    if missing:
        raise DataError(f"{folder}: not a normalised preferences table, missing {missing}")
    schema = preferences_schema(preference_label_columns(table.schema))
    try:
        table = table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{folder}: columns do not match the preferences schema ({exc}); labels "
                        "are integers 1 (a preferred), -1 (b preferred) or 0 (tie)") from exc
    return table.set_column(schema.get_field_index("ingest_run"), "ingest_run",
                            _constant(run_id, table.num_rows))


def _constant(value: str, rows: int) -> pa.Array:
    """A string column of ``rows`` copies of ``value``, built by Arrow (no Python list per row)."""
    return pa.repeat(pa.scalar(value, pa.string()), rows)
