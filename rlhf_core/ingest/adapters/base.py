"""The ingest engine shared by all adapters: parsed rows in, normalised Arrow tables out.

An adapter only knows how to turn one decoded source record into a :class:`ParsedRow` (its
responses and the preference pairs between them). :class:`IngestBuilder` assigns deterministic
ids, detects duplicates, keeps every source row either accepted or quarantined (never both,
never lost) and builds the three tables with their explicit schemas.

Duplicate handling depends on the dataset shape:

* pair datasets (``dedupe_responses=True``: PKU-SafeRLHF, UltraFeedback, HH-RLHF): a response is
  identified by its prompt and text; the same text in two rows is one response shared by both
  pairs. If the two occurrences carry different attributes, the later row is quarantined
  (``conflicting_duplicate``). A pair whose two sides are the same text is quarantined
  (``identical_responses``): it expresses no preference.
* rating datasets (``dedupe_responses=False``: HelpSteer): each row is one annotated sample; a
  repeated (prompt, text) gets an occurrence-suffixed id so all samples are kept, and is counted
  in :attr:`IngestResult.duplicates`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from rlhf_core.errors import DataError
from rlhf_core.ingest.adapters.messages import user_turn
from rlhf_core.ingest.adapters.records import RecordError, SourceRow
from rlhf_core.lake.catalog import QUARANTINE_SCHEMA
from rlhf_core.lake.schemas import (
    content_id,
    preferences_schema,
    responses_schema,
)


@dataclass(frozen=True)
class ParsedResponse:
    """One response of a source row: its prompt, text and attribute values by column name.

    ``messages`` is the prompt as a conversation (every turn before the response, see
    :mod:`rlhf_core.ingest.adapters.messages`); ``None`` means one user turn, ``prompt``.
    """

    prompt: str
    response: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None
    messages: Sequence[Mapping[str, str]] | None = None


@dataclass(frozen=True)
class ParsedPair:
    """A preference between two responses of the same row (indices into the row's responses).

    ``labels`` maps criterion -> 1 (a wins), -1 (b wins), 0 (tie) or None (unknown).
    """

    a: int
    b: int
    labels: Mapping[str, int | None]
    margin: float | None = None


@dataclass(frozen=True)
class ParsedRow:
    """Everything one source row contributes."""

    responses: Sequence[ParsedResponse]
    pairs: Sequence[ParsedPair] = ()


@dataclass(frozen=True)
class IngestResult:
    """What an adapter produced from one source file.

    Attributes:
        responses: ``responses`` table (schema from :func:`responses_schema`).
        preferences: ``preferences`` table (schema from :func:`preferences_schema`).
        quarantine: ``quarantine`` rows for source rows that could not be used.
        rows_read: Source rows read (non-blank lines / data rows).
        rows_accepted: Source rows that contributed to the tables.
        duplicates: Rows whose (prompt, response) text repeats an earlier row.
    """

    responses: pa.Table
    preferences: pa.Table
    quarantine: pa.Table
    rows_read: int
    rows_accepted: int
    duplicates: int = 0

    @property
    def rows_quarantined(self) -> int:
        """Source rows quarantined by the adapter."""
        return self.quarantine.num_rows


class IngestBuilder:
    """Accumulates parsed rows into columns; every ``add`` is all-or-nothing.

    Args:
        source: Dataset name stored in every row and hashed into ``prompt_id``.
        run_id: Ingest run id stored in every row.
        attributes: Attribute fields of the ``responses`` table.
        criteria: Label columns of the ``preferences`` table.
        dedupe_responses: See the module docstring.
    """

    def __init__(
        self,
        source: str,
        run_id: str,
        attributes: Sequence[pa.Field],
        criteria: Sequence[str],
        *,
        dedupe_responses: bool,
    ) -> None:
        self.source = source
        self.run_id = run_id
        self.response_schema = responses_schema(attributes)
        self.preference_schema = preferences_schema(criteria)
        self._attr_names = [f.name for f in attributes]
        self._criteria = list(criteria)
        self._dedupe = dedupe_responses
        self._responses: dict[str, list[Any]] = {n: [] for n in self.response_schema.names}
        self._pairs: dict[str, list[Any]] = {n: [] for n in self.preference_schema.names}
        self._quarantine: dict[str, list[Any]] = {n: [] for n in QUARANTINE_SCHEMA.names}
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._occurrences: dict[str, int] = {}
        self.duplicates = 0
        self.rows_accepted = 0

    def _ids(self, item: ParsedResponse, pending: dict[str, int]) -> tuple[str, str, bool]:
        """``(prompt_id, response_id, repeats_earlier_text)`` for one response of a row."""
        prompt_id = content_id(self.source, item.group if item.group is not None else item.prompt)
        base_id = content_id(prompt_id, item.response)
        count = self._occurrences.get(base_id, 0) + pending.get(base_id, 0)
        pending[base_id] = pending.get(base_id, 0) + 1
        if self._dedupe or count == 0:
            return prompt_id, base_id, count > 0
        return prompt_id, content_id(prompt_id, item.response, str(count)), True

    def add(self, line: int, parsed: ParsedRow) -> None:
        """Add one parsed row, or raise :class:`RecordError` having added nothing."""
        pending: dict[str, int] = {}
        fresh: dict[str, tuple[str, ParsedResponse, tuple[Any, ...]]] = {}
        dups = 0
        keyed = [(item, *self._ids(item, pending)) for item in parsed.responses]
        ids = [response_id for _, _, response_id, _ in keyed]
        prompt_ids = [prompt_id for _, prompt_id, _, _ in keyed]
        for pair in parsed.pairs:
            if ids[pair.a] == ids[pair.b]:
                raise RecordError("identical_responses", "both sides of the pair are the same text")
            if prompt_ids[pair.a] != prompt_ids[pair.b]:
                raise RecordError(
                    "prompt_mismatch", "the two sides of the pair answer different prompts"
                )
        for item, prompt_id, response_id, repeated in keyed:
            values = tuple(item.attributes.get(name) for name in self._attr_names)
            earlier = self._seen.get(response_id)
            if earlier is None and response_id in fresh:
                earlier = fresh[response_id][2]
            if earlier is not None and earlier != values:
                raise RecordError(
                    "conflicting_duplicate",
                    f"response {response_id[:12]} appears earlier with different attributes",
                )
            if earlier is None:
                fresh[response_id] = (prompt_id, item, values)
            dups += repeated
        for key, count in pending.items():
            self._occurrences[key] = self._occurrences.get(key, 0) + count
        for response_id, (prompt_id, item, values) in fresh.items():
            self._seen[response_id] = values
            row = (
                prompt_id,
                response_id,
                item.prompt,
                list(item.messages) if item.messages is not None else user_turn(item.prompt),
                item.response,
                self.source,
                line,
                self.run_id,
            )
            for name, value in zip(self._responses, (*row, *values), strict=True):
                self._responses[name].append(value)
        for pair in parsed.pairs:
            a, b = ids[pair.a], ids[pair.b]
            base = (
                content_id(a, b),
                prompt_ids[pair.a],
                a,
                b,
                pair.margin,
                self.source,
                line,
                self.run_id,
            )
            labels = tuple(pair.labels.get(c) for c in self._criteria)
            for name, value in zip(self._pairs, (*base, *labels), strict=True):
                self._pairs[name].append(value)
        self.duplicates += dups
        self.rows_accepted += 1

    def quarantine(
        self, line: int | None, raw: str, error: RecordError, *, table: str = "source"
    ) -> None:
        """Record one unusable row."""
        row = (self.source, line, table, error.rule, error.reason, raw, self.run_id)
        for name, value in zip(self._quarantine, row, strict=True):
            self._quarantine[name].append(value)

    def tables(self) -> tuple[pa.Table, pa.Table, pa.Table]:
        """The ``responses``, ``preferences`` and ``quarantine`` tables built so far."""
        return (
            pa.Table.from_pydict(self._responses, schema=self.response_schema),
            pa.Table.from_pydict(self._pairs, schema=self.preference_schema),
            pa.Table.from_pydict(self._quarantine, schema=QUARANTINE_SCHEMA),
        )


def run_ingest(
    rows: Iterable[SourceRow],
    parse: Callable[[Mapping[str, Any]], ParsedRow],
    builder: IngestBuilder,
) -> IngestResult:
    """Feed source rows through ``parse`` into ``builder``; quarantine whatever fails.

    Raises:
        DataError: If rows are lost (read != accepted + quarantined); that is a bug, not bad data.
    """
    rows_read = 0
    for row in rows:
        rows_read += 1
        if row.error is not None or row.record is None:
            builder.quarantine(
                row.line, row.raw, row.error or RecordError("bad_json", "undecodable")
            )
            continue
        try:
            builder.add(row.line, parse(row.record))
        except RecordError as exc:
            builder.quarantine(row.line, row.raw, exc)
    responses, preferences, quarantine = builder.tables()
    result = IngestResult(
        responses, preferences, quarantine, rows_read, builder.rows_accepted, builder.duplicates
    )
    check_conservation(result)
    return result


def check_conservation(result: IngestResult) -> None:
    """Raise unless every source row was either accepted or quarantined exactly once."""
    if result.rows_read != result.rows_accepted + result.rows_quarantined:
        raise DataError(
            f"ingest run conservation broken: read {result.rows_read} rows, accepted "
            f"{result.rows_accepted}, quarantined {result.rows_quarantined}; report this bug"
        )
