"""The ``runs`` table: start/end records, idempotent re-runs, JSON columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rlhf_core.errors import LakeError
from rlhf_core.lake.runs import (
    RUNS_SCHEMA,
    get_run,
    list_run_records,
    package_versions,
    record_run_end,
    record_run_start,
)
from rlhf_core.lake.store import Lake


def test_start_then_end_round_trip(wizard_home: Path) -> None:
    lake = Lake()
    t0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    start = record_run_start(lake, "run-1", "score-responses", contract_hash="sha256:abc",
                             parameters={"shards": 4, "dry_run": False}, started_at=t0)
    assert start.status == "running"
    assert get_run(lake, "run-1") == start
    end = record_run_end(lake, "run-1", row_counts={"ingested": 10, "accepted": 9, "quarantined": 1})
    got = get_run(lake, "run-1")
    assert got == end
    assert got.status == "completed" and got.started_at == t0 and got.ended_at > t0
    assert got.parameters == {"shards": 4, "dry_run": False}
    assert got.row_counts["quarantined"] == 1
    assert got.package_versions["pyarrow"].startswith("26.")
    assert "python" in got.package_versions and "jax" in got.package_versions
    read_back = lake.read_table("runs").schema
    assert read_back.names == [*RUNS_SCHEMA.names, "run_id"]
    assert read_back.field("started_at").type == RUNS_SCHEMA.field("started_at").type


def test_rerun_same_id_is_idempotent(wizard_home: Path) -> None:
    lake = Lake()
    record_run_start(lake, "r", "ingest-dataset")
    record_run_end(lake, "r", "failed", error="boom at shard 3")
    assert get_run(lake, "r").error == "boom at shard 3"
    record_run_start(lake, "r", "ingest-dataset", parameters={"retry": 1})
    again = get_run(lake, "r")
    assert again.status == "running" and again.error is None and again.parameters == {"retry": 1}
    assert len(lake.part_paths("runs", "r")) == 1
    assert lake.count_rows("runs") == 1


def test_list_and_errors(wizard_home: Path) -> None:
    lake = Lake()
    assert list_run_records(lake) == []
    with pytest.raises(LakeError, match="run nope has no record"):
        record_run_end(lake, "nope")
    record_run_start(lake, "b", "f", started_at=datetime(2026, 1, 2, tzinfo=UTC))
    record_run_start(lake, "a", "f", started_at=datetime(2026, 1, 3, tzinfo=UTC))
    assert [r.run_id for r in list_run_records(lake)] == ["b", "a"]
    with pytest.raises(LakeError, match="completed, failed, cancelled"):
        record_run_end(lake, "a", "done")
    assert record_run_end(lake, "b", "cancelled", error="KeyboardInterrupt").status == "cancelled"
    with pytest.raises(LakeError, match="parameters is not JSON-serialisable"):
        record_run_start(lake, "c", "f", parameters={"x": object()})


def test_package_versions_marks_missing() -> None:
    versions = package_versions(["duckdb", "surely-not-a-package-xyz"])
    assert versions["surely-not-a-package-xyz"] == "not installed"
    assert versions["duckdb"].startswith("2.")


def test_first_line_of_an_empty_message_names_the_exception() -> None:
    from rlhf_core.errors import first_line

    assert first_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert first_line(ValueError("\n  bad value at row 3\nmore")) == "bad value at row 3"
    assert len(first_line(ValueError("x" * 900))) == 500
