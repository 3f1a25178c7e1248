"""Shard planning keeps prompts whole and covers every row exactly once."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.errors import DataError
from rlhf_core.scoring.shards import list_pieces, plan_shards


def _write(path: Path, prompt_ids: list[str], row_group_size: int) -> str:
    table = pa.table({"prompt_id": prompt_ids, "x": list(range(len(prompt_ids)))})
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=30),
    rg=st.integers(1, 9),
    target=st.integers(1, 40),
    split=st.integers(0, 30),
)
def test_shards_cover_rows_once_and_keep_prompts_whole(tmp_path_factory, sizes, rg, target, split):
    tmp = tmp_path_factory.mktemp("shards")
    prompts = [f"p{i:04d}" for i, n in enumerate(sizes) for _ in range(n)]
    cut = min(split, len(prompts))
    files = [_write(tmp / "a.parquet", prompts[:cut] or prompts, rg)]
    if cut:
        files.append(_write(tmp / "b.parquet", prompts[cut:] or prompts[:1], rg))
    pieces = list_pieces(files, "prompt_id")
    shards = plan_shards(pieces, target, keep_groups=True)
    seen = [(p.path, p.row_group) for s in shards for p in s.pieces]
    assert sorted(seen) == sorted((p.path, p.row_group) for p in pieces)
    owner: dict[str, int] = {}
    for shard in shards:
        for piece in shard.pieces:
            ids = pq.ParquetFile(piece.path).read_row_group(piece.row_group).column("prompt_id")
            for pid in set(ids.to_pylist()):
                assert owner.setdefault(pid, shard.index) == shard.index, f"prompt {pid} split"


def test_without_groups_shards_respect_target(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.parquet", [f"p{i}" for i in range(100)], 10)
    shards = plan_shards(list_pieces([path], "prompt_id"), 30, keep_groups=False)
    assert [s.num_rows for s in shards] == [30, 30, 30, 10]
    assert len(plan_shards(list_pieces([path], "prompt_id"), 25, keep_groups=False)) == 4


def test_missing_group_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": [1, 2]}), path)
    with pytest.raises(DataError, match="no column 'prompt_id'"):
        list_pieces([str(path)], "prompt_id")


def test_not_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    path.write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        list_pieces([str(path)], "prompt_id")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read input file"):
        list_pieces([str(tmp_path / "missing.parquet")], "prompt_id")
