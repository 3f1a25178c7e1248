"""Synthetic generator, quality gate and adapters, side by side with a baseline in the same run.

Run: ``python -m benchmarks.bench_data [--quick]``. Prints a Markdown table; ``ratio`` is
``ours / baseline`` wall time (lower is better).

* generate: :func:`write_synthetic` (correlated attributes + text, chunked zstd Parquet) vs DuckDB
  ``COPY (SELECT <same columns from random()> FROM range(N)) TO ... (FORMAT parquet)``.
* quality: :func:`check_table` (Arrow row predicates + GX suite, cross-checked) vs a hand-written
  pyarrow filter with the same predicates (what the gate costs over "just filtering"), on a table
  GX validates whole and on one above ``GX_MAX_ROWS`` (GX on a prefix + flagged rows). The first
  call (GX import + ephemeral context) is reported separately.
* ingest: each adapter on the real files (if ``../shared/data`` is present) vs ``json.loads`` of
  every line (the floor for a JSONL reader).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.timing import best_of
from rlhf_core.ingest.adapters import ingest
from rlhf_core.ingest.generator import generate_table, write_synthetic

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "preferences"
FILES = {
    "helpsteer": "helpsteer_train500.jsonl",
    "pku_saferlhf": "pku_saferlhf_train500.jsonl",
    "ultrafeedback": "ultrafeedback_binarized_train1000.jsonl",
    "hh_rlhf": "hh_helpful_train500.jsonl",
}


def _duckdb_generate(rows: int, path: Path) -> None:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(
        f"""COPY (SELECT
              'p' || lpad(CAST(i // 4 AS VARCHAR), 10, '0') AS prompt_id,
              'p' || lpad(CAST(i // 4 AS VARCHAR), 10, '0') || '-c' || CAST(i % 4 AS VARCHAR) AS response_id,
              'Explain topic for a student (prompt ' || CAST(i // 4 AS VARCHAR) || ').' AS prompt,
              'A concise answer about topic (candidate ' || CAST(i % 4 AS VARCHAR) || ').' AS response,
              'synthetic' AS source, i + 1 AS source_line, 'bench' AS ingest_run,
              CAST(least(4, greatest(0, 2.2 + random() * 2 - 1)) AS FLOAT) AS helpfulness,
              CAST(least(4, greatest(0, 2.3 + random() * 2 - 1)) AS FLOAT) AS correctness,
              CAST(least(4, greatest(0, 2.8 + random() * 2 - 1)) AS FLOAT) AS coherence,
              CAST(least(4, greatest(0, 1.8 + random() * 2 - 1)) AS FLOAT) AS verbosity,
              random() > 0.09 AS is_safe, CAST(0 AS TINYINT) AS severity,
              CAST(50 + random() * 100 AS INTEGER) AS length
            FROM range({int(rows)}) t(i)) TO '{path.as_posix()}' (FORMAT parquet, COMPRESSION zstd)"""
    )
    con.close()


def _arrow_predicates(table: pa.Table) -> pa.Table:
    ok = pc.and_(pc.is_valid(table["response_id"]), pc.is_valid(table["prompt"]))
    for column in ("prompt", "response"):
        ok = pc.and_(ok, pc.invert(pc.match_substring_regex(table[column], r"^\s*$")))
    for column in ("helpfulness", "correctness", "coherence", "verbosity"):
        ok = pc.and_(
            ok, pc.and_(pc.greater_equal(table[column], 0), pc.less_equal(table[column], 4))
        )
    ok = pc.and_(ok, pc.equal(table["is_safe"], pc.equal(table["severity"], 0)))
    unique = pc.equal(pc.count_distinct(table["response_id"]), table.num_rows)
    return table.filter(ok) if unique.as_py() else table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    gen_rows = 200_000 if args.quick else 10_000_000
    check_rows = 20_000 if args.quick else 100_000
    lines = [
        "| case | rows | ours (s) | baseline | baseline (s) | ratio | ours rows/s |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]

    with tempfile.TemporaryDirectory() as tmp:
        ours = best_of(lambda: write_synthetic(Path(tmp) / "syn", gen_rows, seed=0))
        base = best_of(lambda: _duckdb_generate(gen_rows, Path(tmp) / "duck.parquet"))
        lines.append(
            f"| generate + write Parquet | {gen_rows:,} | {ours:.2f} | DuckDB COPY range() | {base:.2f} | {ours / base:.2f} | {gen_rows / ours:,.0f} |"
        )

    from rlhf_core.quality.gx import check_table

    small = generate_table(100, seed=1)
    first = best_of(lambda: check_table("responses", small, run_id="bench"))
    lines.append(
        f"| quality first call (GX import + context) | 100 | {first:.2f} | - | - | - | - |"
    )
    table = generate_table(check_rows, seed=1)
    ours = best_of(lambda: check_table("responses", table, run_id="bench"), repeat=3)
    base = best_of(lambda: _arrow_predicates(table), repeat=3)
    lines.append(
        f"| quality check responses (GX) | {check_rows:,} | {ours:.3f} | pyarrow predicates | {base:.3f} | {ours / base:.1f} | {check_rows / ours:,.0f} |"
    )
    ours = best_of(lambda: check_table("responses", small, run_id="bench"), repeat=3)
    lines.append(f"| quality per-call overhead (GX) | 100 | {ours:.3f} | - | - | - | - |")
    big_rows = 300_000 if args.quick else 2_000_000
    big = generate_table(big_rows, seed=2)
    ours = best_of(lambda: check_table("responses", big, run_id="bench"))
    base = best_of(lambda: _arrow_predicates(big))
    lines.append(
        f"| quality check responses (Arrow split, GX on prefix + flagged) | {big_rows:,} | {ours:.3f} "
        f"| pyarrow predicates | {base:.3f} | {ours / base:.1f} | {big_rows / ours:,.0f} |"
    )

    for adapter, name in FILES.items():
        path = SHARED / name
        if not path.exists():
            continue
        ours = best_of(lambda p=path, a=adapter: ingest(p, adapter=a, run_id="bench"), repeat=3)
        base = best_of(
            lambda p=path: [
                json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()
            ],
            repeat=3,
        )
        rows = sum(1 for _ in path.open(encoding="utf-8"))
        lines.append(
            f"| ingest {adapter} | {rows:,} | {ours:.3f} | json.loads per line | {base:.3f} | {ours / base:.1f} | {rows / ours:,.0f} |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
