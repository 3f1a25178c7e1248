"""HTML run report build time, side by side with a naive pandas/NumPy/matplotlib report and the
bare cost of reading the run's columns.

Run: ``python -m benchmarks.bench_report [--quick]``. Prints a Markdown table; ratios are
``build_report / baseline`` measured in the same run (lower is better).

* ``build_report``: collect (DuckDB aggregation, seeded 5k-point sample) + render + atomic write.
* ``naive``: the same charts (same chart functions) from pandas: read the same columns, merge
  scores with response texts, ``np.histogram`` per column, SciPy Pearson/Spearman (text length
  and the declared ``length`` column), deciles by
  ``qcut``, hexbin over every point; no template, no contract card, no write.
* ``collect``: the aggregation part of ``build_report`` alone.
* ``read floor``: pyarrow reads the columns the report needs and nothing else.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmarks.timing import best_of
from rlhf_core.contract import load_contract
from rlhf_core.ingest.generator import write_synthetic
from rlhf_core.lake.runs import record_run_end, record_run_start
from rlhf_core.lake.store import Lake
from rlhf_core.report import build_report, charts
from rlhf_core.report.collect import collect_run
from rlhf_core.scoring.score import score_table

CONTRACT = Path(__file__).resolve().parents[1] / "configs" / "contracts" / "demo.yaml"


def _lake(root: Path, rows: int, run_id: str) -> Lake:
    """A lake holding one run: generated responses scored under the demo contract."""
    lake = Lake(root / "lake")
    paths = write_synthetic(root / "data", rows, seed=0)
    responses = pa.concat_tables([pa.parquet.read_table(p) for p in paths])
    program = load_contract(CONTRACT).program
    scores = score_table(program, responses, id_columns=["prompt_id", "response_id"])
    record_run_start(lake, run_id, "bench-report", parameters={"contract": str(CONTRACT)})
    lake.write_partition("responses", run_id, responses, responses.schema)
    lake.write_partition("scores", run_id, scores, scores.schema)
    record_run_end(lake, run_id, "completed", row_counts={"scored": scores.num_rows})
    return lake


def _naive(lake: Lake, run_id: str) -> None:
    """The same four charts, from pandas/NumPy/SciPy aggregates and every point (no sample)."""
    from scipy import stats

    scores = pd.read_parquet(lake.partition_path("scores", run_id))
    texts = pd.read_parquet(lake.partition_path("responses", run_id),
                            columns=["response_id", "response", "length"])
    texts["n_chars"] = texts["response"].str.len()
    merged = scores.merge(texts[["response_id", "n_chars", "length"]], on="response_id")
    cols = ["reward", *[c for c in scores.columns if c.startswith("u_")]]
    hists = {}
    for c in cols:
        counts, edges = np.histogram(scores[c].to_numpy(), bins=40)
        hists[c] = (edges, counts)
    pearson = stats.pearsonr(merged["n_chars"], merged["reward"]).statistic
    spearman = stats.spearmanr(merged["n_chars"], merged["reward"]).statistic
    stats.pearsonr(merged["length"], merged["reward"])  # the declared length attribute, as the report does
    stats.spearmanr(merged["length"], merged["reward"])
    deciles = merged.groupby(pd.qcut(merged["n_chars"], 10, duplicates="drop"), observed=True)[
        ["n_chars", "reward"]].mean()
    rates = {c: float(scores[c].mean()) for c in scores.columns if c.startswith("v_")}
    charts.histogram_grid(hists)
    charts.rate_bars(rates, "violation rates")
    charts.length_bias(merged["n_chars"].to_numpy(), merged["reward"].to_numpy(),
                       list(deciles.itertuples(index=False, name=None)), pearson, spearman)


def _read_floor(lake: Lake, run_id: str) -> None:
    lake.read_table("scores", run_id=run_id)
    lake.read_table("responses", run_id=run_id, columns=["response_id", "response", "length"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    args = parser.parse_args(argv)
    sizes = [20_000] if args.quick else [100_000, 1_000_000]
    repeat = 3 if args.quick else 5
    print("| rows | build_report s | collect s | naive s | read floor s | report / naive | collect / read floor | HTML KiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
            run_id = f"bench-{rows}"
            lake = _lake(Path(tmp), rows, run_id)
            html_bytes = build_report(lake, run_id, audit=False).bytes  # also warms imports
            t_ours = best_of(lambda lake=lake, run_id=run_id: build_report(lake, run_id, audit=False), repeat)
            t_naive = best_of(lambda lake=lake, run_id=run_id: _naive(lake, run_id), repeat)
            t_collect = best_of(lambda lake=lake, run_id=run_id: collect_run(lake, run_id), repeat)
            t_read = best_of(lambda lake=lake, run_id=run_id: _read_floor(lake, run_id), repeat)
            print(f"| {rows:,} | {t_ours:.2f} | {t_collect:.2f} | {t_naive:.2f} | {t_read:.2f} | "
                  f"{t_ours / t_naive:.2f} | {t_collect / t_read:.1f} | {html_bytes / 1024:.0f} |")


if __name__ == "__main__":
    main()
