"""The pyarrow schemas of the ingest tables: ``responses`` and ``preferences`` (and the ids).

Each of these tables has one explicit schema, defined here and nowhere else:

* ``responses``: fixed identity/text columns (:data:`RESPONSE_BASE_FIELDS`, with
  :data:`PROMPT_MESSAGES_FIELD` after ``prompt``) followed by typed, nullable attribute columns. Which attributes a table carries depends on the dataset, so the
  schema is built by :func:`responses_schema` from attribute fields; the canonical attribute
  fields of the known datasets (HelpSteer ratings, PKU-SafeRLHF safety and the 19 harm
  categories, UltraFeedback ``score``, the synthetic ``length``) are defined once in
  :data:`ATTRIBUTE_FIELDS` so every adapter and the generator agree on their types.
* ``preferences``: fixed pair columns, one ``int8`` label column per criterion (``better``,
  ``safer`` ...) and a nullable ``margin``. Labels: ``1`` = response a wins, ``-1`` = response b
  wins, ``0`` = tie (ties are kept, never silently dropped).
* ``quarantine`` (its fixed schema is in :mod:`rlhf_core.lake.catalog`): one row per rejected
  source row or table row, with the rule, the reason and the raw record as a JSON string.

Ids are deterministic content hashes (:func:`content_id`), so re-ingesting a file yields the
same ids (idempotent) and duplicates in a source are detectable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

RESPONSE_BASE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("response_id", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("response", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_line", pa.int64(), nullable=True),
    pa.field("ingest_run", pa.string(), nullable=False),
)
"""Identity and text columns every ``responses`` part carries (``source_line`` 1-based)."""

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
"""One chat message, ``{"role": ..., "content": ...}`` (the Hugging Face / TRL chat layout)."""

PROMPT_MESSAGES_FIELD = pa.field("prompt_messages", pa.list_(MESSAGE_TYPE), nullable=True)
"""The prompt as the conversation before the response: every turn, in order (roles ``user``,
``assistant``, ``system`` ...). ``prompt`` is the same prompt rendered as text (what contracts
read, e.g. ``len(prompt)``, and what ``prompt_id`` hashes). Single-turn sources carry
``[{"role": "user", "content": prompt}]``. Written by every ingest; partitions written before it
existed lack it (readers then fall back to that single user turn), so it is not among
:data:`RESPONSE_BASE_FIELDS`, which every part must carry."""

NULL_VETO_COLUMN = "null_veto"
"""Optional ``bool`` column the ingest gate adds when a contract input declares
``on_null: veto``: true where such an input was null (and filled with a placeholder). The scorer
ORs it into the contract's ``veto`` (floor reward), so a null never reaches it."""

PKU_HARM_CATEGORIES: tuple[str, ...] = (
    "Endangering National Security",
    "Insulting Behavior",
    "Discriminatory Behavior",
    "Endangering Public Health",
    "Copyright Issues",
    "Violence",
    "Drugs",
    "Privacy Violation",
    "Economic Crime",
    "Mental Manipulation",
    "Human Trafficking",
    "Physical Harm",
    "Sexual Content",
    "Cybercrime",
    "Disrupting Public Order",
    "Environmental Damage",
    "Psychological Harm",
    "White-Collar Crime",
    "Animal Abuse",
)
"""The 19 PKU-SafeRLHF harm categories, in the dataset's order."""


def harm_column(category: str) -> str:
    """Column name of a PKU harm category, e.g. ``"White-Collar Crime"`` -> ``harm_white_collar_crime``."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in category.lower())
    return "harm_" + "_".join(part for part in slug.split("_") if part)


HARM_COLUMNS: tuple[str, ...] = tuple(harm_column(c) for c in PKU_HARM_CATEGORIES)

RATING_COLUMNS: tuple[str, ...] = (
    "helpfulness",
    "correctness",
    "coherence",
    "complexity",
    "verbosity",
)
"""HelpSteer-style 0-4 ratings (stored as float32 so synthetic data can be continuous)."""

ATTRIBUTE_FIELDS: dict[str, pa.Field] = {
    **{name: pa.field(name, pa.float32()) for name in RATING_COLUMNS},
    "score": pa.field("score", pa.float32()),
    "is_safe": pa.field("is_safe", pa.bool_()),
    "severity": pa.field("severity", pa.int8()),
    "length": pa.field("length", pa.int32()),
    **{name: pa.field(name, pa.bool_()) for name in HARM_COLUMNS},
}
"""Canonical typed attribute fields of the known datasets (all nullable)."""

PREFERENCE_BASE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("pair_id", pa.string(), nullable=False),
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("response_a_id", pa.string(), nullable=False),
    pa.field("response_b_id", pa.string(), nullable=False),
    pa.field("margin", pa.float32(), nullable=True),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_line", pa.int64(), nullable=True),
    pa.field("ingest_run", pa.string(), nullable=False),
)
"""Pair columns every ``preferences`` table starts with; label columns follow."""

_RESPONSE_BASE_NAMES = frozenset(
    [*(f.name for f in RESPONSE_BASE_FIELDS), PROMPT_MESSAGES_FIELD.name, NULL_VETO_COLUMN])
_PREFERENCE_BASE_NAMES = frozenset(f.name for f in PREFERENCE_BASE_FIELDS)


def attribute_fields(names: Iterable[str]) -> list[pa.Field]:
    """The canonical fields of known attribute names, in the given order.

    Raises:
        KeyError: If a name is not a known attribute (the generic adapter declares its own).
    """
    return [ATTRIBUTE_FIELDS[name] for name in names]


def responses_schema(attributes: Sequence[pa.Field]) -> pa.Schema:
    """The ``responses`` schema: base fields (``prompt_messages`` after ``prompt``) followed by
    the given attribute fields.

    Args:
        attributes: Typed attribute fields; each is made nullable.

    Returns:
        The schema; raises ``ValueError`` if an attribute reuses a base column name.
    """
    clash = [f.name for f in attributes if f.name in _RESPONSE_BASE_NAMES]
    if clash:
        raise ValueError(f"attribute columns {clash} clash with base response columns")
    base = list(RESPONSE_BASE_FIELDS)
    base.insert([f.name for f in base].index("prompt") + 1, PROMPT_MESSAGES_FIELD)
    return pa.schema([*base, *(f.with_nullable(True) for f in attributes)])


def user_turns(prompts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """Each prompt text as a one-message conversation ``[{"role": "user", "content": text}]``.

    Built without copying the text (the struct's ``content`` child is ``prompts`` itself), so
    filling ``prompt_messages`` of a single-turn table costs an offsets and a role buffer.
    """
    content = prompts.combine_chunks() if isinstance(prompts, pa.ChunkedArray) else prompts
    n = len(content)
    messages = pa.StructArray.from_arrays([pa.repeat(pa.scalar("user"), n), content.cast(pa.string())],
                                          fields=list(MESSAGE_TYPE))
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), messages,
                                    type=PROMPT_MESSAGES_FIELD.type)


def preferences_schema(criteria: Sequence[str]) -> pa.Schema:
    """The ``preferences`` schema: base pair fields followed by one ``int8`` label per criterion."""
    clash = [c for c in criteria if c in _PREFERENCE_BASE_NAMES]
    if clash:
        raise ValueError(f"label columns {clash} clash with base preference columns")
    return pa.schema([*PREFERENCE_BASE_FIELDS, *(pa.field(c, pa.int8()) for c in criteria)])


def response_attribute_columns(schema: pa.Schema) -> list[str]:
    """Names of the attribute columns of a ``responses`` schema."""
    return [name for name in schema.names if name not in _RESPONSE_BASE_NAMES]


def preference_label_columns(schema: pa.Schema) -> list[str]:
    """Names of the label (criterion) columns of a ``preferences`` schema."""
    return [name for name in schema.names if name not in _PREFERENCE_BASE_NAMES]


def content_id(*parts: str) -> str:
    """Deterministic id: hex sha256 of the parts joined by the unit separator ``\\x1f``.

    Used as ``prompt_id = content_id(source, prompt)``,
    ``response_id = content_id(prompt_id, response)`` and
    ``pair_id = content_id(response_a_id, response_b_id)``.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
