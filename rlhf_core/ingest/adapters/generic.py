"""The generic adapter: any JSONL / CSV / Parquet file described by a mapping file.

Lets a user bring a new dataset without code (see :mod:`rlhf_core.ingest.adapters.mapping` for the
format), chat-format conversation columns included. CSV cells are text, so they are converted to
the declared dtype (``"3"`` -> 3.0, ``"true"`` -> True); a cell that does not convert is a
``wrong_type`` quarantine row.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping as AnyMapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from rlhf_core.ingest.adapters.base import (
    IngestBuilder,
    IngestResult,
    ParsedPair,
    ParsedResponse,
    ParsedRow,
    run_ingest,
)
from rlhf_core.ingest.adapters.mapping import AttributeSpec, LabelSpec, Mapping, load_mapping
from rlhf_core.ingest.adapters.messages import Message, render_prompt, split_conversation
from rlhf_core.ingest.adapters.pairs import within_prompt_pairs
from rlhf_core.ingest.adapters.readers import iter_csv, iter_jsonl, iter_parquet, rows_of_table
from rlhf_core.ingest.adapters.records import RecordError, SourceRow, get_value
from rlhf_core.ingest.adapters.sql_source import (
    huggingface_files,
    read_source_table,
    run_mapping_sql,
)

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _lookup(record: AnyMapping[str, Any], path: str) -> Any:
    """Value at a dotted path; ``None`` when any step is missing."""
    if path in record:
        return record[path]
    value: Any = record
    for step in path.split("."):
        if not isinstance(value, AnyMapping) or step not in value:
            return None
        value = value[step]
    return value


def _from_csv_text(value: str, kind: str, column: str) -> Any:
    try:
        if kind == "float":
            return float(value)
        if kind == "int":
            return int(value)
    except ValueError:
        raise RecordError(
            "wrong_type", f"field '{column}' must be a {kind}, got {value!r}"
        ) from None
    if kind == "bool":
        lowered = value.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise RecordError("wrong_type", f"field '{column}' must be a boolean, got {value!r}")
    return value


class _Parser:
    """Turns records into :class:`ParsedRow` according to a mapping."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self.text_cells = mapping.format == "csv" and mapping.sql is None

    def value(self, record: AnyMapping[str, Any], column: str, kind: str, *, required: bool) -> Any:
        raw = _lookup(record, column)
        if self.text_cells and isinstance(raw, str) and kind != "string":
            raw = _from_csv_text(raw, kind, column)
        return get_value({column: raw}, column, kind, required=required)

    def text(self, record: AnyMapping[str, Any], column: str) -> str:
        return self.value(record, column, "string", required=True)

    @staticmethod
    def group(record: AnyMapping[str, Any], column: str) -> str:
        """The group key as text: a string or an integer id (other types are wrong types)."""
        raw = _lookup(record, column)
        if isinstance(raw, int) and not isinstance(raw, bool):
            return str(raw)
        return get_value({column: raw}, column, "string", required=True)

    def attributes(self, record: AnyMapping[str, Any], side: str | None) -> dict[str, Any]:
        out = {}
        for name, spec in self.mapping.attributes.items():
            column = self._column(spec, side)
            out[name] = self.value(record, column, spec.kind, required=spec.required)
        return out

    @staticmethod
    def _column(spec: AttributeSpec, side: str | None) -> str:
        if side == "a" and spec.column_a is not None:
            return spec.column_a
        if side == "b" and spec.column_b is not None:
            return spec.column_b
        assert spec.column is not None  # guaranteed by Mapping validation
        return spec.column

    def label(self, record: AnyMapping[str, Any], name: str, spec: LabelSpec) -> int | None:
        if spec.constant is not None:
            return spec.constant
        assert spec.column is not None  # guaranteed by LabelSpec validation
        raw = _lookup(record, spec.column)
        if raw is None:
            return None
        for wanted, label in ((spec.a, 1), (spec.b, -1), (spec.tie, 0)):
            if wanted is not None and (raw == wanted or str(raw) == str(wanted)):
                return label
        raise RecordError(
            "out_of_range", f"label '{name}' column '{spec.column}' has unexpected value {raw!r}"
        )

    def prompt(self, record: AnyMapping[str, Any], turns: list[Message] | None) -> str:
        """The prompt text: the ``prompt`` column, else the conversation's turns rendered."""
        if self.mapping.prompt is not None:
            return self.text(record, self.mapping.prompt)
        assert turns is not None  # guaranteed by Mapping validation
        return render_prompt(turns)

    def __call__(self, record: AnyMapping[str, Any]) -> ParsedRow:
        mapping = self.mapping
        group = None
        if mapping.group is not None:
            group = self.group(record, mapping.group)
        if mapping.messages is not None:
            turns, text = split_conversation(_lookup(record, mapping.messages), mapping.messages)
            return ParsedRow([ParsedResponse(self.prompt(record, turns), text,
                                             self.attributes(record, None), group, turns)])
        if mapping.pair is None:
            assert mapping.response is not None  # guaranteed by Mapping validation
            item = ParsedResponse(self.prompt(record, None), self.text(record, mapping.response),
                                  self.attributes(record, None), group)
            return ParsedRow([item])
        pair = mapping.pair
        turns = None
        if pair.chat:
            assert pair.messages_a is not None and pair.messages_b is not None
            turns, text_a = split_conversation(_lookup(record, pair.messages_a), pair.messages_a)
            turns_b, text_b = split_conversation(_lookup(record, pair.messages_b), pair.messages_b)
            if turns != turns_b:
                raise RecordError("prompt_mismatch", f"conversations '{pair.messages_a}' and "
                                  f"'{pair.messages_b}' differ before their last assistant turn")
        else:
            assert pair.response_a is not None and pair.response_b is not None
            text_a = self.text(record, pair.response_a)
            text_b = self.text(record, pair.response_b)
        prompt = self.prompt(record, turns)
        a = ParsedResponse(prompt, text_a, self.attributes(record, "a"), group, turns)
        b = ParsedResponse(prompt, text_b, self.attributes(record, "b"), group, turns)
        labels = {name: self.label(record, name, spec) for name, spec in pair.labels.items()}
        margin = None
        if pair.margin is not None:
            margin = self.value(record, pair.margin, "float", required=False)
        return ParsedRow([a, b], [ParsedPair(0, 1, labels, margin)])


class GenericAdapter:
    """Adapter driven by a :class:`Mapping` (or a mapping file path)."""

    name = "generic"

    def __init__(self, mapping: Mapping | str | Path, *, split: str | None = None) -> None:
        self.mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
        if split is not None:
            self.mapping = self.mapping.model_copy(update={"split": split})

    def rows(self, path: str | Path) -> Iterator[SourceRow]:
        """Stream the source rows in the mapping's format (or its ``sql`` query's result rows)."""
        mapping = self.mapping
        if mapping.sql is not None:
            table = read_source_table(Path(path), mapping.format, split=mapping.split,
                                      csv_delimiter=mapping.csv_delimiter)
            return rows_of_table(run_mapping_sql(table, mapping.sql, mapping.path or "<mapping>"))
        if mapping.format == "huggingface":
            return self._huggingface_rows(Path(path))
        if self.mapping.format == "csv":
            return iter_csv(path, delimiter=self.mapping.csv_delimiter)
        if self.mapping.format == "parquet":
            return iter_parquet(path)
        return iter_jsonl(path)

    def _huggingface_rows(self, folder: Path) -> Iterator[SourceRow]:
        """Rows of every shard of the split, numbered across shards."""
        offset = 0
        for file in huggingface_files(folder, self.mapping.split):
            last = 0
            for row in iter_parquet(file):
                last = row.line
                yield replace(row, line=offset + row.line)
            offset += last

    def ingest(self, path: str | Path, *, run_id: str) -> IngestResult:
        """Read ``path`` as the mapping says and return responses, preferences and quarantine."""
        mapping = self.mapping
        if mapping.pair is not None:
            criteria = list(mapping.pair.labels)
        elif mapping.derive_pairs is not None:
            criteria = [mapping.derive_pairs.criterion]
        else:
            criteria = []
        builder = IngestBuilder(
            mapping.source,
            run_id,
            mapping.attribute_fields(),
            criteria,
            dedupe_responses=mapping.pair is not None,
        )
        result = run_ingest(self.rows(path), _Parser(mapping), builder)
        if mapping.derive_pairs is not None:
            derived = within_prompt_pairs(
                result.responses, mapping.derive_pairs.from_, mapping.derive_pairs.criterion
            )
            result = replace(result, preferences=derived)
        return result
