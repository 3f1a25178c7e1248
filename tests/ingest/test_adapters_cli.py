"""`rlhf-wizard data {ingest,quarantine,generate}` end to end on real and generated files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import typer
from typer.testing import CliRunner

from rlhf_cli.data import register
from rlhf_core.lake.store import Lake

REPO = Path(__file__).resolve().parents[2]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def test_ingest_writes_lake_and_is_idempotent(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "preferences" / "hh_harmless_train500.jsonl"
    runner = CliRunner()
    args = ["data", "ingest", str(source), "--adapter", "hh_rlhf", "--out", str(tmp_path), "--json"]
    first = runner.invoke(_app(), args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["rows_read"] == 500
    assert (summary["preferences"], summary["quarantined"]) == (499, 1)
    run_id = summary["run_id"]
    report = json.loads(Path(summary["paths"]["quality_report"]).read_text(encoding="utf-8"))
    assert report["responses"]["rows_in"] == 998 and report["responses"]["quarantined"] == 0
    assert report["source_rows"] == {
        "read": 500,
        "accepted": 499,
        "quarantined": 1,
        "duplicates": 0,
    }
    assert run_id.startswith("ingest-hh_rlhf-")
    lake = Lake(tmp_path)
    before = lake.read_table("responses", run_id=run_id)
    again = runner.invoke(_app(), args)
    assert json.loads(again.output)["run_id"] == run_id
    assert lake.read_table("responses", run_id=run_id).equals(before)
    assert len(lake.part_paths("responses", run_id)) == 1
    shown = runner.invoke(_app(), ["data", "quarantine", "--dir", str(tmp_path), "--json"])
    rows = json.loads(shown.output)
    assert [(r["source_line"], r["rule"]) for r in rows] == [(330, "prompt_mismatch")]


def test_ingest_with_mapping_and_gate_failure(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "preferences" / "helpsteer_train500.jsonl"
    lines = source.read_bytes().splitlines()[:40]
    lines[:8] = [b"{broken" for _ in range(8)]  # 20 % unreadable
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    mapping = REPO / "configs" / "mappings" / "helpsteer.yaml"
    lake_dir = tmp_path / "lake"
    result = CliRunner().invoke(
        _app(),
        [
            "data",
            "ingest",
            str(bad),
            "--mapping",
            str(mapping),
            "--out",
            str(lake_dir),
            "--run-id",
            "bad-1",
        ],
    )
    assert result.exit_code != 0
    assert "20.0% of 40 source rows could not be read (threshold 5.0%)" in str(result.exception)
    quarantine = Lake(lake_dir).read_table("quarantine", run_id="bad-1")
    assert quarantine.column("source_line").to_pylist() == list(range(1, 9))
    assert set(quarantine.column("rule").to_pylist()) == {"bad_json"}
    ok = CliRunner().invoke(
        _app(),
        [
            "data",
            "ingest",
            str(bad),
            "--mapping",
            str(mapping),
            "--out",
            str(lake_dir),
            "--run-id",
            "bad-2",
            "--max-failure-rate",
            "0.25",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert Lake(lake_dir).count_rows("responses", "bad-2") == 32


def test_generate_command_writes_parquet(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    result = CliRunner().invoke(
        _app(), ["data", "generate", "--rows", "1000", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "part-00000.parquet")
    assert table.num_rows == 1000
    assert table.column("prompt_id").to_pylist()[:4] == ["p0000000000"] * 4


def test_generate_defaults_to_wizard_home(wizard_home: Path) -> None:
    result = CliRunner().invoke(_app(), ["data", "generate", "--rows", "10", "--seed", "1"])
    assert result.exit_code == 0, result.output
    synthetic = wizard_home / "incoming" / "synthetic"  # a default data root: runs may read it
    assert [p.name for p in synthetic.iterdir()] == ["part-00000.parquet"]
