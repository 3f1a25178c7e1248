"""Dense prompt segments: the sorted fast path equals dictionary encoding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_core.scoring.score import dense_segments


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=40), st.booleans())
def test_sorted_fast_path_matches_dictionary_encoding(ids: list[str], sort: bool) -> None:
    ids = sorted(ids) if sort else ids
    table = pa.table({"prompt_id": ids})
    expected = pc.dictionary_encode(pa.array(ids)).indices.to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(dense_segments(table, "prompt_id"), expected)
