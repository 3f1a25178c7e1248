"""Lake, warehouse and audit-log overheads, side by side with plain pyarrow / DuckDB / file I/O.

Run: ``python -m benchmarks.bench_lake [--quick]``. Prints a Markdown table; the ratio column is
``ours / baseline`` in the same run (lower is better; 1.0 means no overhead).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.timing import best_of
from rlhf_core.lake.store import Lake
from rlhf_core.lake.warehouse import Warehouse
from rlhf_core.security.audit import AuditLog
from rlhf_core.security.audit_verify import verify_audit

SCHEMA = pa.schema([
    pa.field("response_id", pa.string(), nullable=False),
    pa.field("prompt_id", pa.string(), nullable=False),
    *(pa.field(f"attr_{i}", pa.float32()) for i in range(4)),
    pa.field("length", pa.int32()),
])


def _data(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.arange(rows)
    return pa.table({
        "response_id": pa.array(np.char.add("r", ids.astype(str))),
        "prompt_id": pa.array(np.char.add("p", (ids // 4).astype(str))),
        **{f"attr_{i}": pa.array(rng.random(rows, dtype=np.float32)) for i in range(4)},
        "length": pa.array(rng.integers(1, 2000, rows, dtype=np.int32)),
    }, schema=SCHEMA)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    args = parser.parse_args(argv)
    rows = 200_000 if args.quick else 2_000_000
    shards = 8
    audit_n = 100 if args.quick else 500
    repeat = 2 if args.quick else 3
    data = _data(rows)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp, "lake"))
        plain = Path(tmp, "plain")
        plain.mkdir()
        ours = best_of(lambda: lake.write_part("scores", "r1", data, SCHEMA), repeat)
        base = best_of(lambda: pq.write_table(data, plain / "one.parquet", compression="zstd"), repeat)
        results.append(("write one part (validate+atomic+fsync)", rows, ours, base))

        pieces = [data.slice(i * rows // shards, rows // shards) for i in range(shards)]

        def _sharded() -> None:
            for i, piece in enumerate(pieces):
                lake.write_part("scores", "r2", piece, SCHEMA, part=i, staged=True)
            lake.commit_partition("scores", "r2", expected_parts=shards)

        def _sharded_plain() -> None:
            for i, piece in enumerate(pieces):
                pq.write_table(piece, plain / f"part-{i}.parquet", compression="zstd")

        results.append((f"write {shards} staged shards + commit", rows, best_of(_sharded, repeat),
                        best_of(_sharded_plain, repeat)))
        ours = best_of(lambda: lake.read_table("scores", "r1"), repeat)
        base = best_of(lambda: pq.read_table(plain / "one.parquet"), repeat)
        results.append(("read one run (hive dataset)", rows, ours, base))

        warehouse = Warehouse(lake)
        warehouse.refresh_views()
        sql = "SELECT run_id, avg(attr_0) AS a, count(*) AS n FROM scores GROUP BY run_id"
        glob = str(Path(lake.table_path("scores"), "run_id=*", "part-*.parquet"))
        direct = ("SELECT run_id, avg(attr_0) AS a, count(*) AS n FROM read_parquet(?, "
                  "hive_partitioning = true) GROUP BY run_id")
        ours = best_of(lambda: warehouse.query(sql), repeat)
        base = best_of(lambda: duckdb.connect().sql(direct, params=[glob]).to_arrow_table(), repeat)
        results.append(("warehouse query (open + view)", 2 * rows, ours, base))

        log = AuditLog(Lake(Path(tmp, "audit-lake")))
        log.append("key_created", "warm-up")  # creates the operator key outside the timing
        start = time.perf_counter()
        for i in range(audit_n):
            log.append("run_started", f"run-{i}", {"i": i})
        ours = time.perf_counter() - start
        raw = Path(tmp, "raw.log")
        start = time.perf_counter()
        for i in range(audit_n):
            fd = os.open(raw, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, (json.dumps({"seq": i, "kind": "run_started", "details": {"i": i}}) + "\n").encode())
            os.fsync(fd)
            os.close(fd)
        base = time.perf_counter() - start
        results.append(("audit append (sign+chain+checkpoint)", audit_n, ours, base))
        start = time.perf_counter()
        report = verify_audit(log.lake)
        verify_s = time.perf_counter() - start
        if not report.ok:
            raise SystemExit(f"audit verify failed in the benchmark: {report.problems[0]}")

    print("| case | rows | ours (s) | baseline (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, n, ours_s, base_s in results:
        print(f"| {name} | {n:,} | {ours_s:.4f} | {base_s:.4f} | {ours_s / base_s:.2f} |")
    print(f"\naudit verify: {audit_n + 1} entries in {verify_s:.3f} s "
          f"({(audit_n + 1) / verify_s:,.0f} entries/s); baselines: plain pq.write_table / "
          "pq.read_table, DuckDB read_parquet in memory, raw O_APPEND+fsync line writes")


if __name__ == "__main__":
    main()
