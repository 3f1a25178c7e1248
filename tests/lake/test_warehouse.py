"""DuckDB warehouse views over the lake, bound parameters, and the `query` CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from rlhf_cli.main import app
from rlhf_core.errors import LakeError
from rlhf_core.lake.runs import record_run_end, record_run_start
from rlhf_core.lake.store import Lake
from rlhf_core.lake.warehouse import Warehouse, quote_identifier
from rlhf_core.security.audit import AuditLog

SCHEMA = pa.schema([("response_id", pa.string(), False), ("reward", pa.float64())])


def _scores(lake: Lake, run_id: str, n: int, base: float) -> None:
    lake.write_part(run_id=run_id, table="scores", schema=SCHEMA, data=pa.table({
        "response_id": [f"{run_id}-{i}" for i in range(n)],
        "reward": [base + i for i in range(n)],
    }))


@pytest.fixture()
def lake(wizard_home: Path) -> Lake:
    lake = Lake()
    _scores(lake, "run-1", 3, 0.0)
    _scores(lake, "run-2", 4, 10.0)
    return lake


def test_views_cover_several_runs_with_bound_params(lake: Lake) -> None:
    wh = Warehouse(lake)
    assert wh.refresh_views() == ["scores"]
    assert Path(lake.base, "warehouse.duckdb").is_file()
    by_run = wh.query("SELECT run_id, count(*) AS n, sum(reward) AS s FROM scores GROUP BY 1 ORDER BY 1")
    assert by_run.to_pylist() == [{"run_id": "run-1", "n": 3, "s": 3.0},
                                  {"run_id": "run-2", "n": 4, "s": 46.0}]
    hit = wh.query("SELECT response_id FROM scores WHERE run_id = ? AND reward > ?", ["run-2", 11.5])
    assert hit.column("response_id").to_pylist() == ["run-2-2", "run-2-3"]
    # a literal that would be an injection if interpolated is just a non-matching value
    assert wh.query("SELECT * FROM scores WHERE run_id = ?", ["x' OR '1'='1"]).num_rows == 0
    _scores(lake, "run-3", 2, 100.0)  # new run of an existing table: visible with no refresh
    assert wh.query("SELECT count(*) AS n FROM scores").column("n").to_pylist() == [9]
    assert wh.query("SELECT * FROM scores ORDER BY reward", limit=5).num_rows == 5


def test_new_tables_and_deleted_tables_refresh_views(lake: Lake) -> None:
    wh = Warehouse(lake)
    wh.refresh_views()
    record_run_start(lake, "run-1", "score-responses", parameters={"shards": 2})
    record_run_end(lake, "run-1", row_counts={"scored": 3})
    runs = wh.query("SELECT run_id, status, json_extract(row_counts, '$.scored')::INT AS n FROM runs")
    assert runs.to_pylist() == [{"run_id": "run-1", "status": "completed", "n": 3}]
    assert set(wh.views()) == {"runs", "scores"}
    lake.delete_partition("runs", "run-1")
    assert wh.query("SELECT 1 AS one").num_rows == 1
    assert wh.views() == ["scores"]


def test_hidden_files_never_read(lake: Lake) -> None:
    part_dir = Path(lake.partition_path("scores", "run-1"))
    (part_dir / ".tmp-dead-part-00000.parquet").write_bytes(b"PAR1 half written")
    staged = Path(lake.table_path("scores")) / ".staging-run_id=run-9"
    staged.mkdir()
    (staged / "part-00000.parquet").write_bytes(b"junk")
    assert Warehouse(lake).query("SELECT count(*) AS n FROM scores").column("n").to_pylist() == [7]


def test_audit_view(lake: Lake) -> None:
    log = AuditLog(lake)
    log.append("run_started", "run-1", {"flow": "score-responses"})
    log.append("run_finished", "run-1", {"rows": 3})
    rows = Warehouse(lake).query(
        "SELECT seq, kind, subject, details->>'$.rows' AS rows FROM audit ORDER BY seq").to_pylist()
    assert rows == [{"seq": 0, "kind": "run_started", "subject": "run-1", "rows": None},
                    {"seq": 1, "kind": "run_finished", "subject": "run-1", "rows": "3"}]


def test_errors_and_identifier_allow_list(lake: Lake) -> None:
    wh = Warehouse(lake)
    with pytest.raises(LakeError, match="query failed: .*views: scores"):
        wh.query("SELECT * FROM nope")
    with pytest.raises(LakeError, match="invalid SQL identifier"):
        quote_identifier('scores"; DROP VIEW scores; --')
    picked = wh.select("scores", ["response_id"], where={"run_id": "run-1"})
    assert picked.column("response_id").to_pylist() == ["run-1-0", "run-1-1", "run-1-2"]
    with pytest.raises(LakeError, match="has no column 'bogus'"):
        wh.select("scores", ["bogus"])
    with pytest.raises(LakeError, match="no warehouse view 'missing'"):
        wh.select("missing")
    with pytest.raises(LakeError, match="query failed"):
        wh.query("CREATE TABLE t AS SELECT 1")  # user SQL runs on a read-only connection


def test_query_cli_json_csv_table(lake: Lake) -> None:
    runner = CliRunner()
    sql = "SELECT response_id, reward, run_id FROM scores WHERE run_id = ? ORDER BY reward"
    result = runner.invoke(app, ["query", sql, "--json", "-p", "run-2", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"response_id": "run-2-0", "reward": 10.0, "run_id": "run-2"},
        {"response_id": "run-2-1", "reward": 11.0, "run_id": "run-2"},
    ]
    result = runner.invoke(app, ["query", "SELECT * FROM scores WHERE reward >= ? ORDER BY reward",
                                 "--csv", "-p", "12"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["response_id"] for r in rows] == ["run-2-2", "run-2-3"]
    assert set(rows[0]) == {"response_id", "reward", "run_id"}
    result = runner.invoke(app, ["query", "SELECT run_id, count(*) AS n FROM scores GROUP BY 1 ORDER BY 1"])
    assert result.exit_code == 0, result.output
    assert "run-1" in result.stdout and "run-2" in result.stdout and "2 rows" in result.stdout
    result = runner.invoke(app, ["query", "SELECT * FROM missing_table"])
    assert result.exit_code == 1 and isinstance(result.exception, LakeError)


def test_views_follow_a_moved_lake(lake: Lake, tmp_path: Path) -> None:
    Warehouse(lake).refresh_views()
    moved = tmp_path / "moved-home"
    Path(lake.base).rename(moved)
    relocated = Lake(moved)
    n = Warehouse(relocated).query("SELECT count(*) AS n FROM scores").column("n").to_pylist()
    assert n == [7]
    assert Warehouse(relocated).views() == ["scores"]
    shown = Warehouse(relocated).query("SHOW TABLES").column("name").to_pylist()
    assert shown == ["scores"]  # the refresh bookkeeping lives in its own schema


@pytest.mark.integration
def test_refresh_waits_for_another_process_holding_the_database(lake: Lake) -> None:
    import subprocess
    import sys

    wh = Warehouse(lake)
    wh.refresh_views()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(0.6)", str(wh.path)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    _scores(lake, "run-9", 1, 0.0)
    record_run_start(lake, "run-9", "score-responses")  # a new table: the view set changes
    assert wh.refresh_views() == ["runs", "scores"]  # retried until the holder let go
    assert holder.wait(timeout=30) == 0
