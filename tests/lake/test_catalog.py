"""The table catalog names every lake table once, and code reaches tables only through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pytest

from rlhf_core.lake.catalog import TABLES, Table, spec
from rlhf_core.lake.store import Lake
from rlhf_core.quality.suites import TABLE_KINDS
from tests.conftest import REPO_ROOT

_LAKE_METHODS = {
    "write_part", "write_partition", "write_batches", "commit_partition", "discard_staging",
    "delete_partition", "read_table", "read_run", "part_paths", "list_runs", "has_data",
    "dataset", "count_rows", "read_metadata", "partition_path", "table_path", "staging_path",
}


def test_every_table_has_one_entry_with_a_schema_or_its_builder() -> None:
    assert set(TABLES) == set(Table)
    for table, entry in TABLES.items():
        assert entry.table is table and entry.name == table.value
        assert (entry.schema is None) != (entry.schema_source == ""), table
        assert entry.partition_key == "run_id"
        assert entry.written_by, table


def test_quality_suites_named_by_the_catalog_exist() -> None:
    suites = {entry.quality_suite for entry in TABLES.values() if entry.quality_suite}
    assert suites == set(TABLE_KINDS)


def test_spec_lookup_by_member_and_name() -> None:
    assert spec(Table.PAIRS) is spec("pairs")
    assert isinstance(spec("plans").schema, pa.Schema)
    with pytest.raises(KeyError, match="not a lake table; known tables: runs, responses"):
        spec("nope")


def test_a_member_is_its_name_for_the_lake(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    table = pa.table({"x": [1, 2]})
    lake.write_partition(Table.PAIRS, "r1", table, table.schema)
    assert lake.list_tables() == ["pairs"]
    assert lake.read_run("pairs", "r1").column("x").to_pylist() == [1, 2]


def _loose_table_names(source: str, label: str) -> list[str]:
    tree = ast.parse(source, filename=label)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _LAKE_METHODS and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append(f"{label}:{node.lineno} "
                         f"{node.func.attr}({node.args[0].value!r})")
    return found


def test_code_names_tables_through_the_catalog() -> None:
    files = [p for top in ("rlhf_core", "tasks", "flows", "ops", "rlhf_cli")
             for p in (REPO_ROOT / top).rglob("*.py")]
    offenders = [hit for path in files for hit in _loose_table_names(
        path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))]
    assert offenders == [], "use rlhf_core.lake.catalog.Table:\n" + "\n".join(offenders)


def test_the_scan_sees_a_loose_name() -> None:
    source = "lake.read_run('scores', run_id)\nlake.read_run(Table.SCORES, run_id)\n"
    assert _loose_table_names(source, "bad.py") == ["bad.py:1 read_run('scores')"]
