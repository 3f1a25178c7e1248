"""The free-text columns of the lake: the one list of what encryption at rest covers.

Prompts, responses and everything quoting them are often harmful or personal text (safety data is
collected for exactly that). On an encrypted lake (:mod:`rlhf_core.lake.encryption`) the columns
named here are written with Parquet modular encryption; every other column (ids, ratings, scores,
labels) stays readable without a key, so numeric queries need none. A column listed here that a
given file lacks (``prompt_messages`` on single-turn data) is simply skipped; a nested column is
named by its top-level field and encrypted whole.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from rlhf_core.lake.catalog import Table

TEXT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    Table.RESPONSES: ("prompt", "response", "prompt_messages"),
    Table.PAIRS: ("prompt", "chosen", "rejected"),
    Table.DISAGREEMENTS: ("prompt", "chosen", "rejected"),
    Table.QUARANTINE: ("record",),
}
"""Free-text columns by table (``prompt_messages``: a conversation's earlier turns)."""

__all__ = ["TEXT_COLUMNS", "text_columns"]


def text_columns(table: str, schema: pa.Schema) -> list[str]:
    """The free-text columns of ``table`` that ``schema`` carries, in schema order.

    Args:
        table: Lake table name.
        schema: The schema of the file about to be written.

    Returns:
        Column names to encrypt; empty for a table without free text.
    """
    wanted = set(TEXT_COLUMNS.get(table, ()))
    return [name for name in schema.names if name in wanted]
