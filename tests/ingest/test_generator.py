"""The synthetic generator: determinism, size, shape, sort order and correlations."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rlhf_core.ingest.generator import (
    BLOCK_PROMPTS,
    SYNTHETIC_SCHEMA,
    generate_table,
    iter_synthetic,
    write_synthetic,
)


def _digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = write_synthetic(tmp_path / "a", 150_000, seed=11, chunk_rows=65_536)
    second = write_synthetic(tmp_path / "b", 150_000, seed=11, chunk_rows=65_536)
    other = write_synthetic(tmp_path / "c", 150_000, seed=12, chunk_rows=65_536)
    assert len(first) == 3
    assert _digest(first) == _digest(second)
    assert _digest(first) != _digest(other)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [p.name for p in first]


def test_rows_do_not_depend_on_chunk_size() -> None:
    rows = 2 * BLOCK_PROMPTS * 4 + 1234
    small = generate_table(rows, seed=3)
    chunked = list(iter_synthetic(rows, seed=3, chunk_rows=BLOCK_PROMPTS * 4))
    assert len(chunked) == 3
    assert pa.concat_tables(chunked).equals(small)


def test_shape_schema_and_sort(tmp_path: Path) -> None:
    table = generate_table(10_003, seed=5, candidates=4)
    assert table.schema == SYNTHETIC_SCHEMA
    assert table.num_rows == 10_003
    prompt_ids = table["prompt_id"].to_pylist()
    assert prompt_ids == sorted(prompt_ids)
    assert len(set(prompt_ids)) == 2501  # 2500 full prompts + one with 3 candidates
    assert len(set(table["response_id"].to_pylist())) == 10_003
    for column in ("helpfulness", "correctness", "coherence", "verbosity"):
        values = table[column].to_numpy()
        assert values.min() >= 0.0 and values.max() <= 4.0
    safe = table["is_safe"].to_numpy(zero_copy_only=False)
    severity = table["severity"].to_numpy()
    assert np.array_equal(severity == 0, safe)
    assert set(np.unique(severity)) <= {0, 1, 2, 3}
    assert 0.03 < 1 - safe.mean() < 0.2
    assert pc.min(table["length"]).as_py() >= 1
    assert pc.min(pc.utf8_length(table["response"])).as_py() > 0
    paths = write_synthetic(tmp_path, 10_003, seed=5)
    assert pq.read_table(paths[0]).equals(table)


def test_attributes_are_correlated() -> None:
    table = generate_table(40_000, seed=1)
    cols = {
        c: table[c].to_numpy().astype(float)
        for c in ("helpfulness", "correctness", "coherence", "verbosity", "length")
    }
    corr = np.corrcoef([cols[c] for c in cols])
    assert corr[0, 1] > 0.5  # helpfulness ~ correctness
    assert corr[0, 2] > 0.4  # helpfulness ~ coherence
    assert corr[3, 4] > 0.6  # verbosity ~ length
    severity = table["severity"].to_numpy()
    helpful = cols["helpfulness"]
    # The documented trade-off: mild harm comes from edgy, more helpful answers; severe harm
    # from poor ones.
    assert helpful[severity == 1].mean() > helpful[severity == 0].mean() + 0.2
    assert helpful[severity >= 2].mean() < helpful[severity == 1].mean() - 0.3


@pytest.mark.parametrize("rows", [0, 100_000_001])
def test_size_limits(rows: int) -> None:
    with pytest.raises(ValueError, match="rows must be between"):
        next(iter_synthetic(rows, seed=0))


def test_rewrite_with_fewer_rows_leaves_no_stale_parts(tmp_path: Path) -> None:
    write_synthetic(tmp_path, 150_000, seed=1, chunk_rows=65_536)
    paths = write_synthetic(tmp_path, 70_000, seed=1, chunk_rows=65_536)
    assert sorted(tmp_path.iterdir()) == paths
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in paths) == 70_000
