"""Benchmark (issue 3): the ``score-responses`` flow vs DuckDB ``COPY (SELECT <contract SQL>)``.

Both read the same generated Parquet files and write scores Parquet (zstd). The flow runs on a
local Dask cluster (2 worker processes, 1 thread each) against one already-started Prefect API;
DuckDB runs the contract's own SQL with its default threads. Reported: total wall, the flow's
start-up overhead (everything that is not shard scoring: Prefect run bookkeeping, Dask cluster
start, shard planning, partition commit, summary) and steady-state rows/s (rows / time from the
first shard starting to the last shard finishing).

Usage: ``python -m benchmarks.bench_pipeline [--quick] [--rows N]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "configs" / "contracts" / "demo.yaml"


def _data(rows: int) -> list[str]:
    from rlhf_core.ingest.generator import write_synthetic

    out = REPO / ".wizard" / "bench-data" / f"rows{rows}-seed1"
    if not any(out.glob("part-*.parquet")):
        write_synthetic(out, rows, seed=1, chunk_rows=1_048_576)
    return sorted(str(p) for p in out.glob("part-*.parquet"))


def _duckdb(paths: list[str], out: Path) -> float:
    from rlhf_core.contract import load_contract
    from rlhf_core.contract.legal_blocks.compile_sql import compile_sql

    sql = compile_sql(load_contract(CONTRACT).program).select("responses", ["prompt_id", "response_id"])
    started = time.perf_counter()
    con = duckdb.connect()
    con.read_parquet(paths).create_view("responses")
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    con.close()
    return time.perf_counter() - started


def _flow(paths: list[str], lake: Path, shard_rows: int, run_id: str, address: str | None = None) -> tuple[float, dict]:
    from flows.score_responses import ScoreResponsesParams, score_responses_with
    from ops.runtime import DaskConfig
    from rlhf_core.contract import load_contract

    params = ScoreResponsesParams(contract=str(CONTRACT), contract_hash=load_contract(CONTRACT).hash,
                                  inputs=paths, run_id=run_id, lake_root=str(lake), shard_rows=shard_rows)
    started = time.perf_counter()
    result = score_responses_with(params, DaskConfig(n_workers=2, threads_per_worker=1, address=address))
    return time.perf_counter() - started, result


def _row(name: str, wall: float, result: dict, rows: int, duck: float) -> str:
    busy = result["scoring_seconds"]
    return (f"| {name} | {wall:.2f} | {wall - busy:.2f} | {rows / busy:,.0f} | {(rows / busy) / (rows / duck):.2f}× "
            f"| {wall / duck:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows instead of 10M")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    paths = _data(rows)
    from ops.runtime import prefect_api

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    # Runs read and write only under configured roots (docs/security.md): this benchmark's own.
    os.environ["RLHF_WIZARD_DATA_ROOTS"] = os.pathsep.join(
        str(p) for p in (REPO / ".wizard" / "bench-data", REPO / "configs", work))
    os.environ["RLHF_WIZARD_OUTPUT_ROOTS"] = str(work)
    shard_rows = max(rows // 4, 1)
    try:
        api_started = time.perf_counter()
        with prefect_api():
            api_seconds = time.perf_counter() - api_started
            duck = _duckdb(paths, work / "duck.parquet")
            cold_wall, cold = _flow(paths, work / "lake", shard_rows, "bench-cold")
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                _flow(paths, work / "lake", shard_rows, "bench-warmup", cluster.scheduler_address)
                warm_wall, warm = _flow(paths, work / "lake", shard_rows, "bench-warm", cluster.scheduler_address)
            duck = min(duck, _duckdb(paths, work / "duck2.parquet"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{rows:,} rows, {cold['shards']} shards on 2 Dask workers x 1 thread; temporary Prefect API "
          f"start-up {api_seconds:.1f} s (once per process, excluded below)\n")
    print("| path | total wall (s) | start-up overhead (s) | steady-state rows/s | steady-state vs DuckDB "
          "| total vs DuckDB |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| DuckDB COPY (contract SQL, 2 threads) | {duck:.2f} | – | {rows / duck:,.0f} | 1.00× | 1.00× |")
    print(_row("score-responses flow, new local Dask cluster", cold_wall, cold, rows, duck))
    print(_row("score-responses flow, running Dask cluster (warm)", warm_wall, warm, rows, duck))
    print("\nTargets: steady-state ≥ 1.0× DuckDB; total ≤ 2.0× DuckDB. Start-up overhead = total wall "
          "minus the span from the first shard starting to the last shard finishing.")


if __name__ == "__main__":
    main()
