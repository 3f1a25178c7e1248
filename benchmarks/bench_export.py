"""Export of a run's pairs to a signed Hugging Face dataset folder vs plain ``pq.write_table``.

Run: ``python -m benchmarks.bench_export [--quick | --large | --rows N]``. A synthetic ``pairs``
partition (prompts of ~50, responses of ~130 characters, one pair per prompt: the worst case for
the split hash) is written to a lake; then ``export_pairs(format="hf")`` (read the lake batch by
batch, split by prompt hash, write train/test zstd Parquet, length figures, provenance digests,
card, SHA-256 manifest signed with DSSE, atomic publish, audit entry) is timed against
``pq.write_table`` of the same table, held in memory, with the same compression. The ratio column
is ``ours / baseline`` in the same run (target: at most 1.5 at 10M pairs, ``--large``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.timing import best_of
from rlhf_core.lake.catalog import PAIRS_SCHEMA, Table
from rlhf_core.lake.store import Lake
from rlhf_core.optimize.export import export_pairs
from rlhf_core.optimize.export_sinks import FREE_TEXT
from rlhf_core.security.operator_key import load_operator_key

SCHEMA = PAIRS_SCHEMA.append(pa.field("contract_hash", pa.string()))
_WORDS = pa.array([f"w{i}{'x' * (i % 7)}" for i in range(2_000)])


def _text(rng: np.random.Generator, rows: int, words: int) -> pa.Array:
    picks = [pc.take(_WORDS, pa.array(rng.integers(0, len(_WORDS), rows))) for _ in range(words)]
    return pc.binary_join_element_wise(*picks, " ")


def _pairs(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = pc.utf8_lpad(pc.cast(pa.array(np.arange(rows)), pa.string()), 12, "0")
    chosen_reward = rng.random(rows, dtype=np.float32) + 1
    rejected_reward = rng.random(rows, dtype=np.float32)
    return pa.table({
        "prompt": _text(rng, rows, 8), "chosen": _text(rng, rows, 22), "rejected": _text(rng, rows, 20),
        "prompt_id": pc.binary_join_element_wise("p", ids, ""),
        "chosen_id": pc.binary_join_element_wise("c", ids, ""),
        "rejected_id": pc.binary_join_element_wise("r", ids, ""),
        "chosen_reward": chosen_reward, "rejected_reward": rejected_reward,
        "margin": chosen_reward - rejected_reward,
        "strategy": pa.array(["best_vs_worst"] * rows).dictionary_encode().cast(pa.string()),
        "weight": pa.repeat(pa.scalar(1.0, pa.float32()), rows), "kind": pa.repeat("pair", rows),
        "chosen_desirable": pa.repeat(True, rows), "rejected_desirable": pa.repeat(False, rows),
        "disagrees": pa.repeat(False, rows),
        "contract_hash": pa.array(["sha256:" + "ab" * 32] * rows),
    }, schema=SCHEMA)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200k pairs (seconds)")
    parser.add_argument("--large", action="store_true", help="10M pairs (the issue's target size)")
    parser.add_argument("--rows", type=int, default=None, help="pairs (overrides the presets)")
    args = parser.parse_args(argv)
    rows = args.rows or (200_000 if args.quick else 10_000_000 if args.large else 1_000_000)
    repeat = 2
    table = _pairs(rows)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp, "home"))
        lake.write_partition(Table.PAIRS, "bench", table, SCHEMA)
        load_operator_key(lake)  # creates the key outside the timing
        out = Path(tmp, "out")
        result: dict = {}

        def ours() -> None:
            result.update(export_pairs("bench", out / "hf", lake, format="hf", test_share=0.1, seed=0))

        coded = [n for n in table.column_names if n not in FREE_TEXT]
        ours_s = best_of(ours, repeat)
        base_s = best_of(lambda: pq.write_table(table, out / "plain.parquet", compression="zstd"), repeat)
        tuned_s = best_of(lambda: pq.write_table(table, out / "tuned.parquet", compression="zstd",
                                                 use_dictionary=coded, write_statistics=coded), repeat)
        folder_bytes = sum(p.stat().st_size for p in (out / "hf").rglob("*") if p.is_file())
        plain_bytes = (out / "plain.parquet").stat().st_size
    print("| case | pairs | ours (s) | baseline (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(f"| export --format hf (signed folder) vs pq.write_table | {rows:,} | {ours_s:.2f} | "
          f"{base_s:.2f} | {ours_s / base_s:.2f} |")
    print(f"| same, baseline with the export's writer settings | {rows:,} | {ours_s:.2f} | "
          f"{tuned_s:.2f} | {ours_s / tuned_s:.2f} |")
    print(f"\nsplits {result['splits']}; folder {folder_bytes / 1e6:,.0f} MB vs plain file "
          f"{plain_bytes / 1e6:,.0f} MB; {table.nbytes / 1e6:,.0f} MB in memory; zstd both (the export "
          "skips dictionaries and statistics on free-text columns); wall clock, best of " + str(repeat))


if __name__ == "__main__":
    main()
