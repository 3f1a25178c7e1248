"""``prompt_aligned_parts``: parts of about ``rows`` rows that never cut a prompt, always a bounded loop."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.ingest.write import prompt_aligned_parts


def _table(sizes: list[int], split: int) -> pa.Table:
    ids = [f"p{i:03d}" for i, size in enumerate(sizes) for _ in range(size)]
    rows = list(range(len(ids)))
    cut = min(split, len(ids))  # two record batches: boundaries need not align with chunks
    batches = [pa.record_batch({"prompt_id": ids[a:b], "row": rows[a:b]})
               for a, b in ((0, cut), (cut, len(ids))) if b > a]
    return pa.Table.from_batches(batches)


@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=25), rows=st.integers(1, 30),
       split=st.integers(0, 60))
def test_parts_cover_the_table_in_order_without_cutting_a_prompt(sizes: list[int], rows: int,
                                                                 split: int) -> None:
    table = _table(sizes, split)
    parts = prompt_aligned_parts(table, rows)
    assert pa.concat_tables(parts).column("row").to_pylist() == list(range(table.num_rows))
    assert all(part.num_rows >= 1 for part in parts)
    firsts = [part.column("prompt_id")[0].as_py() for part in parts[1:]]
    lasts = [part.column("prompt_id")[-1].as_py() for part in parts[:-1]]
    assert all(a != b for a, b in zip(lasts, firsts, strict=True))  # no prompt on both sides of a cut
    largest = max(sizes)
    assert all(part.num_rows < rows + largest for part in parts)  # about `rows`: one prompt over at most
    if table.num_rows > rows:
        assert all(part.num_rows >= rows for part in parts[:-1])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("rows", [0, -5])
def test_rows_below_one_is_refused_not_an_endless_loop(rows: int) -> None:
    """Regression: with ``rows = 0`` no part could end and the loop appended empty parts for ever."""
    with pytest.raises(ValueError, match="part_rows must be at least 1"):
        prompt_aligned_parts(_table([2, 3], 1), rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz")), max_size=12))
def test_sorted_by_prompt_agrees_with_sorting(rows: list[tuple[str, str]]) -> None:
    """The ingest skips its sort only when sorting would change nothing."""
    from rlhf_core.ingest.write import sorted_by_prompt

    table = pa.table({"prompt_id": [p for p, _ in rows], "response_id": [r for _, r in rows]},
                     schema=pa.schema([("prompt_id", pa.string()), ("response_id", pa.string())]))
    resorted = table.sort_by([("prompt_id", "ascending"), ("response_id", "ascending")])
    assert sorted_by_prompt(table) == resorted.equals(table)
