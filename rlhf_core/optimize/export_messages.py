"""The prompts' turns for conversational exports: ``prompt_messages`` from the run's responses.

``pairs`` carry the prompt as text; formats that want the conversation (``trl-conversational``)
get each pair's ``prompt_messages`` looked up by ``prompt_id`` in the run's ``responses``. Only
prompts that are NOT a single user turn equal to their text are kept in the lookup: the rest are
exactly what the converter builds from the text anyway, so a single-turn run (the generator's, or
any plain prompt/response dataset) reads its responses' prompt columns once and looks nothing
up. Responses written before ``prompt_messages`` existed have none (their prompts stay one user
turn).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.lake.catalog import Table
from rlhf_core.lake.schemas import PROMPT_MESSAGES_FIELD
from rlhf_core.lake.store import Lake

__all__ = ["attach_prompt_messages", "multi_turn_prompts"]

_COLUMNS = ["prompt_id", "prompt", PROMPT_MESSAGES_FIELD.name]


def _single_user_turn(table: pa.Table) -> pa.Array:
    """bool per row: the turns are exactly ``[{"role": "user", "content": prompt}]`` (or null)."""
    turns = table.column(PROMPT_MESSAGES_FIELD.name).combine_chunks()
    one = pc.fill_null(pc.equal(pc.list_value_length(turns), 1), False).to_numpy(zero_copy_only=False)
    same = one.copy()
    if one.any():
        first = pc.list_flatten(turns.filter(pa.array(one)))  # exactly one message per kept row
        prompt = table.column("prompt").filter(pa.array(one))
        equal = pc.and_(pc.equal(pc.struct_field(first, "role"), "user"),
                        pc.equal(pc.struct_field(first, "content"), prompt))
        same[one] = pc.fill_null(equal, False).to_numpy(zero_copy_only=False)
    return pa.array(same | pc.is_null(turns).to_numpy(zero_copy_only=False))


def multi_turn_prompts(lake: Lake, run_id: str, batch_rows: int = 262_144) -> pa.Table | None:
    """``(prompt_id, prompt_messages)`` of the run's prompts that are more than one user turn,
    one row per prompt; None when there are none.

    Reads the responses' prompt columns part by part (memory bounded by one batch plus what is
    kept).
    """
    kept: list[pa.Table] = []
    for part in lake.part_paths(Table.RESPONSES, run_id):
        with lake.open_part(part) as parquet:  # decrypts the text on an encrypted lake
            if PROMPT_MESSAGES_FIELD.name not in parquet.schema_arrow.names:
                continue
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=_COLUMNS):
                table = pa.Table.from_batches([batch])
                rest = table.filter(pc.invert(_single_user_turn(table)))
                if rest.num_rows:
                    kept.append(rest.select(["prompt_id", PROMPT_MESSAGES_FIELD.name]))
    if not kept:
        return None
    table = pa.concat_tables(kept)
    ids = table.column("prompt_id")
    first = pc.index_in(pc.unique(ids), value_set=ids)  # first row of every prompt
    return table.take(first)


def attach_prompt_messages(pairs: pa.Table, turns: pa.Table | None) -> pa.Table:
    """``pairs`` with a ``prompt_messages`` column: the prompt's turns from ``turns`` (see
    :func:`multi_turn_prompts`), null where the prompt is one user turn (the converter fills it
    from the text)."""
    if turns is None:
        column = pa.nulls(pairs.num_rows, PROMPT_MESSAGES_FIELD.type)
    else:
        where = pc.index_in(pairs.column("prompt_id"), value_set=turns.column("prompt_id"))
        column = turns.column(PROMPT_MESSAGES_FIELD.name).take(where)
    return pairs.append_column(PROMPT_MESSAGES_FIELD, column)
