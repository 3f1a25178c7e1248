"""The planner benchmark's per-instance Parquet output and its DuckDB breakdown, on real j30 files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from benchmarks import bench_planner
from rlhf_core.planner import critical_path, instance_key, read_sm, read_solutions


def test_benchmark_writes_every_instance_and_ranks_the_hardest_groups(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench" / "instances.parquet"
    bench_planner.main(["--sets", "j30", "--stride", "120", "--budgets", "160", "--algorithms", "bpga,qiea,ga",
                        "--cp-sat-budgets", "", "--out", str(out)])
    table = pq.read_table(out)
    assert table.schema == bench_planner.INSTANCE_SCHEMA
    rows = table.to_pylist()
    files = sorted((shared_data / "psplib" / "j30" / "instances").glob("*.sm"),
                   key=lambda p: instance_key(p.stem))[::120]
    assert len(files) == 4
    assert sorted((r["algorithm"], r["instance"]) for r in rows) == sorted(
        (a, f.stem) for a in ("bpga", "qiea", "ga") for f in files)
    optima = read_solutions(shared_data / "psplib" / "j30" / "j30opt.sm")
    for r in rows:
        arrays = read_sm(shared_data / "psplib" / "j30" / "instances" / f"{r['instance']}.sm").arrays()
        assert r["cp_bound"] == critical_path(arrays).length
        assert r["reference"] == optima[(r["parameter"], r["number"])].upper
        assert r["makespan"] >= r["reference"]  # j30 references are proven optima
        assert r["dev_ref_pct"] == pytest.approx(100 * (r["makespan"] - r["reference"]) / r["reference"])
        assert (r["budget"], r["seed"], r["reference_is_optimum"]) == (160, 0, True)
    assert not [p for p in out.parent.iterdir() if p != out]  # no temp file left beside it

    for algorithm in ("qiea", "bpga"):
        groups = bench_planner.hardest_groups(out, limit=2, algorithm=algorithm)
        with duckdb.connect() as con:
            expected = con.execute(
                "SELECT parameter, avg(dev_ref_pct) AS d FROM read_parquet(?) WHERE algorithm = ? "
                "GROUP BY parameter ORDER BY d DESC, parameter LIMIT 2", [str(out), algorithm]).fetchall()
        assert [(g[0], g[1]) for g in groups] == [("j30", p) for p, _ in expected]
        assert [g[3] for g in groups] == pytest.approx([d for _, d in expected])
    printed = capsys.readouterr().out
    assert f"per-instance results: {out}" in printed
    assert "bpga at the largest budget, PSPLIB parameter groups furthest from the reference" in printed


def test_an_instance_without_a_schedule_is_kept_as_a_null_row_and_named_in_the_table(
    shared_data: Path, tmp_path: Path
) -> None:
    projects, arrays, ref = bench_planner._load("j30", 240)
    found = bench_planner._per_instance("j30", 5000, "cp-sat (same time)", 0, projects, arrays, ref,
                                        [None, ref[instance_key(projects[1].name)].upper], 0.1)
    assert [r["instance"] for r in found] == [p.name for p in projects]
    assert (found[0]["makespan"], found[0]["dev_ref_pct"], found[0]["dev_cp_pct"]) == (None, None, None)
    row = bench_planner._row(found, 0.0, None)
    assert row["algorithm"] == "cp-sat (same time); no schedule on 1 of 2"
    assert (row["n"], row["dev_best"], row["hits"]) == (2, 0.0, 1.0)
    table = pq.read_table(bench_planner.write_instances(found, tmp_path / "instances.parquet"))
    assert table.column("makespan").to_pylist() == [None, found[1]["makespan"]]
