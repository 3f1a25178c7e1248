"""Property: however a run is sharded and re-run, the lake holds exactly the last run's rows."""

from __future__ import annotations

import shutil
import tempfile

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.lake.store import Lake
from rlhf_core.lake.warehouse import Warehouse

SCHEMA = pa.schema([("response_id", pa.string(), False), ("reward", pa.float64())])


def _table(ids: list[int]) -> pa.Table:
    return pa.table({"response_id": [f"r{i}" for i in ids], "reward": [i / 7 for i in ids]},
                    schema=SCHEMA)


def _split(ids: list[int], cuts: list[int]) -> list[list[int]]:
    bounds = [0, *sorted({c % (len(ids) + 1) for c in cuts}), len(ids)]
    return [ids[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=15, deadline=None)
@given(
    attempts=st.lists(
        st.tuples(st.integers(0, 60), st.lists(st.integers(0, 1000), max_size=5)),
        min_size=1, max_size=3,
    ),
    other_rows=st.integers(0, 5),
)
def test_sharded_reruns_conserve_rows(attempts: list[tuple[int, list[int]]], other_rows: int) -> None:
    root = tempfile.mkdtemp(prefix="lake-prop-")
    try:
        lake = Lake(root)
        lake.write_partition("scores", "other", _table(list(range(1000, 1000 + other_rows))), SCHEMA)
        for rows, cuts in attempts:  # each attempt re-runs run "r" with a different sharding
            shards = _split(list(range(rows)), cuts)
            lake.discard_staging("scores", "r")
            for part, ids in enumerate(shards):
                lake.write_part("scores", "r", _table(ids), SCHEMA, part=part, staged=True)
            lake.commit_partition("scores", "r", expected_parts=len(shards))
        final_rows = attempts[-1][0]
        got = lake.read_table("scores", "r").column("response_id").to_pylist()
        assert sorted(got) == sorted(f"r{i}" for i in range(final_rows))
        assert lake.count_rows("scores") == final_rows + other_rows
        counts = Warehouse(lake).query(
            "SELECT run_id, count(*) AS n FROM scores GROUP BY run_id ORDER BY run_id").to_pylist()
        expected = [{"run_id": "other", "n": other_rows}, {"run_id": "r", "n": final_rows}]
        assert counts == [c for c in expected if c["n"]]  # empty parts add no groups
    finally:
        shutil.rmtree(root)
