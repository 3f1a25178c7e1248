"""The mapping file of the generic adapter: which source columns become what.

A mapping is a small YAML document, e.g. ``configs/mappings/helpsteer.yaml``::

    source: helpsteer          # dataset name (hashed into prompt ids)
    format: jsonl              # jsonl | csv | parquet
    prompt: prompt             # column holding the prompt text
    response: response         # row-per-response datasets: column holding the response
    group: null                # optional column grouping rows into prompts (else prompt text)
    attributes:                # typed attribute columns
      helpfulness: {column: helpfulness, dtype: float32}
    derive_pairs: {criterion: better, from: helpfulness}   # optional within-prompt pairs

Pair datasets name both sides and the labels instead of ``response``::

    pair:
      response_a: chosen
      response_b: rejected
      labels:
        better: {column: better_response_id, a: 0, b: 1}   # or {constant: 1}
      margin: null
    attributes:
      score: {column_a: metadata.score_chosen, column_b: metadata.score_rejected, dtype: float32}

Columns may be dotted paths into nested JSON objects (``metadata.score_chosen``).

Chat-format sources hold conversations: a column with a list of ``{role, content}`` messages
whose LAST ``assistant`` turn is the response and whose earlier turns are the prompt (kept turn
by turn in ``prompt_messages``; see :mod:`rlhf_core.ingest.adapters.messages`). Name it with
``messages`` instead of ``response`` (one conversation per row), or ``messages_a`` /
``messages_b`` instead of ``response_a`` / ``response_b`` (pairs; both conversations must share
their prompt turns). ``prompt`` is then optional: without it the prompt text is rendered from
the turns::

    format: huggingface
    pair:
      messages_a: chosen          # [{role: user, ...}, ..., {role: assistant, ...}]
      messages_b: rejected
      labels: {better: {constant: 1}}

``format: huggingface`` reads a Hugging Face dataset folder (``data/<split>-*.parquet``; ``split``
defaults to ``train``, ``--split`` overrides it). ``sql:`` gives a DuckDB query over the view
``source`` whose result columns are what the other keys name — for message trees, list-position
labels, unnesting or renaming (see :mod:`rlhf_core.ingest.adapters.sql_source` for its sandbox)::

    sql: |
      SELECT p.message_id AS prompt_id, p.text AS prompt, r.text AS response
      FROM source r JOIN source p ON r.parent_id = p.message_id
      WHERE r.role = 'assistant'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML, YAMLError

from rlhf_core.errors import DataError

DTYPES: dict[str, pa.DataType] = {
    "float": pa.float32(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int": pa.int64(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}
"""Attribute dtypes a mapping may declare."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttributeSpec(_Strict):
    """One typed attribute: ``column`` (row datasets) or ``column_a`` / ``column_b`` (pairs)."""

    dtype: Literal[tuple(DTYPES)]  # type: ignore[valid-type]
    column: str | None = None
    column_a: str | None = None
    column_b: str | None = None
    required: bool = True

    @property
    def kind(self) -> str:
        """Value family: ``float``, ``int``, ``bool`` or ``string``."""
        return (
            "float"
            if self.dtype.startswith("float")
            else "int"
            if self.dtype.startswith("int")
            else self.dtype
        )


class LabelSpec(_Strict):
    """How a criterion label is read: a source column with the values meaning a / b / tie, or a constant."""

    column: str | None = None
    a: Any = None
    b: Any = None
    tie: Any = None
    constant: Literal[-1, 0, 1] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> LabelSpec:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' or 'constant'")
        return self


class PairSpec(_Strict):
    """The two responses of a pair row (text columns, or conversation columns whose last
    assistant turn is the response) and the label columns."""

    response_a: str | None = None
    response_b: str | None = None
    messages_a: str | None = None
    messages_b: str | None = None
    labels: dict[str, LabelSpec]
    margin: str | None = None

    @model_validator(mode="after")
    def _sides(self) -> PairSpec:
        texts, chats = (self.response_a, self.response_b), (self.messages_a, self.messages_b)
        if not (all(texts) and not any(chats)) and not (all(chats) and not any(texts)):
            raise ValueError("give both 'response_a' and 'response_b' (text columns) or both "
                             "'messages_a' and 'messages_b' (conversation columns), not a mix")
        return self

    @property
    def chat(self) -> bool:
        """Whether the sides are conversation columns."""
        return self.messages_a is not None


class DerivePairsSpec(_Strict):
    """Within-prompt pairs labelled by a rating attribute (HelpSteer style)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    criterion: str = "better"
    from_: str = Field(alias="from")


class Mapping(_Strict):
    """A validated mapping file."""

    source: str
    format: Literal["jsonl", "csv", "parquet", "huggingface"]
    prompt: str | None = None
    response: str | None = None
    messages: str | None = None
    group: str | None = None
    attributes: dict[str, AttributeSpec] = {}
    pair: PairSpec | None = None
    derive_pairs: DerivePairsSpec | None = None
    csv_delimiter: str = ","
    sql: str | None = Field(default=None, min_length=1)
    split: str = Field(default="train", pattern=r"^[A-Za-z0-9_.]+$")
    path: str | None = Field(default=None, exclude=True)
    """The file this mapping was read from (named in errors); set by :func:`load_mapping`."""

    @model_validator(mode="after")
    def _shape(self) -> Mapping:
        shapes = [k for k in ("response", "messages", "pair") if getattr(self, k) is not None]
        if len(shapes) != 1:
            raise ValueError("give exactly one of 'response' (a text column), 'messages' (a "
                             "conversation column) or 'pair'" + (f"; got {', '.join(shapes)}"
                                                                 if shapes else ""))
        chat = self.messages is not None or (self.pair is not None and self.pair.chat)
        if self.prompt is None and not chat:
            raise ValueError("'prompt' (the prompt's column) is required unless the responses "
                             "come from conversation columns ('messages', 'pair.messages_a')")
        if chat and self.format == "csv" and self.sql is None:
            raise ValueError("conversation columns need jsonl, parquet or huggingface data (CSV "
                             "cells cannot hold message lists), or an 'sql' query that builds them")
        for name, spec in self.attributes.items():
            sides = (spec.column_a, spec.column_b)
            if self.pair is None and (spec.column is None or any(sides)):
                raise ValueError(f"attribute '{name}' needs 'column' (one response per row)")
            if self.pair is not None and spec.column is None and None in sides:
                raise ValueError(
                    f"attribute '{name}' needs 'column' or both 'column_a' and 'column_b'"
                )
        if self.derive_pairs is not None:
            if self.pair is not None:
                raise ValueError(
                    "'derive_pairs' applies to one-response-per-row data, not to 'pair'"
                )
            if self.derive_pairs.from_ not in self.attributes:
                raise ValueError(
                    f"'derive_pairs.from' names unknown attribute '{self.derive_pairs.from_}'"
                )
        return self

    def attribute_fields(self) -> list[pa.Field]:
        """The typed ``responses`` attribute fields this mapping produces."""
        return [pa.field(name, DTYPES[spec.dtype]) for name, spec in self.attributes.items()]


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping YAML file.

    Raises:
        DataError: Naming the file and the offending key when the mapping is invalid.
    """
    path = Path(path)
    try:
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise DataError(f"{path}: cannot read mapping file ({' '.join(str(exc).split())})") from None
    if not isinstance(document, dict):
        raise DataError(
            f"{path}: a mapping file must be a YAML mapping (source, format, prompt ...)"
        )
    if "path" in document:
        raise DataError(f"{path}: mapping key 'path' is not a mapping key; remove it")
    try:
        return Mapping.model_validate({**document, "path": str(path)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise DataError(
            f"{path}: mapping key '{where}': {first['msg']}; see configs/mappings/ for examples"
        ) from None
