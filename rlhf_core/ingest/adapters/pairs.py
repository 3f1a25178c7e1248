"""Preference pairs derived within a prompt from a rating attribute (HelpSteer style).

HelpSteer rates responses, it does not compare them. We pair every two responses of the same
prompt (in source order: ``a`` is the earlier row, ``b`` the later one), label the pair from the
rating (``1`` if a's rating is higher, ``-1`` if lower, ``0`` for a tie — ties are kept) and set
``margin = rating_a - rating_b``. Two samples with identical text are not paired (no preference
can be read from them). Pairs never cross prompts, so splitting by prompt avoids leakage.
"""

from __future__ import annotations

import pyarrow as pa

from rlhf_core.lake.schemas import content_id, preferences_schema


def within_prompt_pairs(responses: pa.Table, attribute: str, criterion: str = "better") -> pa.Table:
    """All within-prompt pairs of a ``responses`` table labelled by ``attribute``.

    Args:
        responses: A ``responses`` table carrying the ``attribute`` column.
        attribute: Rating column the label and margin come from (higher is better).
        criterion: Name of the label column (default ``better``).

    Returns:
        A ``preferences`` table with one label column, ``criterion``.
    """
    schema = preferences_schema([criterion])
    columns: dict[str, list] = {name: [] for name in schema.names}
    groups: dict[str, list[int]] = {}
    prompt_ids = responses.column("prompt_id").to_pylist()
    for index, prompt_id in enumerate(prompt_ids):
        groups.setdefault(prompt_id, []).append(index)
    response_ids = responses.column("response_id").to_pylist()
    texts = responses.column("response").to_pylist()
    ratings = responses.column(attribute).to_pylist()
    sources = responses.column("source").to_pylist()
    runs = responses.column("ingest_run").to_pylist()
    for prompt_id, members in groups.items():
        for i, first in enumerate(members):
            for second in members[i + 1 :]:
                if texts[first] == texts[second]:
                    continue
                ra, rb = ratings[first], ratings[second]
                known = ra is not None and rb is not None
                label = ((ra > rb) - (ra < rb)) if known else None
                margin = float(ra - rb) if known else None
                a, b = response_ids[first], response_ids[second]
                row = (
                    content_id(a, b),
                    prompt_id,
                    a,
                    b,
                    margin,
                    sources[first],
                    None,
                    runs[first],
                    label,
                )
                for name, value in zip(schema.names, row, strict=True):
                    columns[name].append(value)
    return pa.Table.from_pydict(columns, schema=schema)
