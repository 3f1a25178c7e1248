"""HelpSteer (nvidia/HelpSteer v1): one rated response per line.

Line format: ``prompt, response, helpfulness, correctness, coherence, complexity, verbosity``
(ints 0-4). Responses keep the five ratings as float32 attributes; preferences are derived
within each prompt from ``helpfulness`` (see :mod:`rlhf_core.ingest.adapters.pairs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from rlhf_core.ingest.adapters.base import (
    IngestBuilder,
    IngestResult,
    ParsedResponse,
    ParsedRow,
    run_ingest,
)
from rlhf_core.ingest.adapters.pairs import within_prompt_pairs
from rlhf_core.ingest.adapters.readers import iter_jsonl
from rlhf_core.ingest.adapters.records import get_text, get_value
from rlhf_core.lake.schemas import RATING_COLUMNS, attribute_fields


def parse_helpsteer(record: Mapping[str, Any]) -> ParsedRow:
    """One HelpSteer line -> one response with its five ratings (all required)."""
    prompt = get_text(record, "prompt")
    response = get_text(record, "response")
    ratings = {name: get_value(record, name, "float") for name in RATING_COLUMNS}
    return ParsedRow([ParsedResponse(prompt, response, ratings)])


class HelpSteerAdapter:
    """Adapter for HelpSteer JSON Lines files."""

    name = "helpsteer"

    def ingest(self, path: str | Path, *, run_id: str) -> IngestResult:
        """Read ``path`` and return responses, within-prompt preferences and quarantine."""
        builder = IngestBuilder(
            self.name, run_id, attribute_fields(RATING_COLUMNS), ["better"], dedupe_responses=False
        )
        result = run_ingest(iter_jsonl(path), parse_helpsteer, builder)
        return replace(result, preferences=within_prompt_pairs(result.responses, "helpfulness"))
