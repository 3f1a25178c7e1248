"""PKU-SafeRLHF: two responses per line with per-response safety labels.

Each line gives ``response_0`` / ``response_1`` with ``is_response_{i}_safe``,
``response_{i}_severity_level`` (0-3) and ``response_{i}_harm_category`` (19 booleans), plus
``better_response_id`` and ``safer_response_id``. Responses carry ``is_safe``, ``severity`` and
the ``harm_*`` columns; the pair is (a = response_0, b = response_1) with labels ``better`` and
``safer`` (1 when response_0 wins, -1 when response_1 wins).
"""

from __future__ import annotations

from collections.abc import Mapping
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
from rlhf_core.ingest.adapters.readers import iter_jsonl
from rlhf_core.ingest.adapters.records import RecordError, get_mapping, get_text, get_value, to_bool
from rlhf_core.lake.schemas import HARM_COLUMNS, PKU_HARM_CATEGORIES, attribute_fields

ATTRIBUTES = ("is_safe", "severity", *HARM_COLUMNS)


def _side(record: Mapping[str, Any], prompt: str, i: int) -> ParsedResponse:
    text = get_text(record, f"response_{i}")
    categories = get_mapping(record, f"response_{i}_harm_category")
    attrs: dict[str, Any] = {
        "is_safe": get_value(record, f"is_response_{i}_safe", "bool"),
        "severity": get_value(record, f"response_{i}_severity_level", "int"),
    }
    for category, column in zip(PKU_HARM_CATEGORIES, HARM_COLUMNS, strict=True):
        if categories.get(category) is None:
            raise RecordError(
                "missing_field", f"harm category '{category}' of response_{i} is missing"
            )
        attrs[column] = to_bool(categories[category], f"response_{i}_harm_category.{category}")
    return ParsedResponse(prompt, text, attrs)


def _winner(record: Mapping[str, Any], key: str) -> int:
    value = get_value(record, key, "int")
    if value not in (0, 1):
        raise RecordError("out_of_range", f"field '{key}' must be 0 or 1, got {value}")
    return 1 if value == 0 else -1


def parse_pku(record: Mapping[str, Any]) -> ParsedRow:
    """One PKU-SafeRLHF line -> two responses and one pair labelled ``better`` and ``safer``."""
    prompt = get_text(record, "prompt")
    sides = [_side(record, prompt, 0), _side(record, prompt, 1)]
    labels = {
        "better": _winner(record, "better_response_id"),
        "safer": _winner(record, "safer_response_id"),
    }
    return ParsedRow(sides, [ParsedPair(0, 1, labels)])


class PkuSafeRlhfAdapter:
    """Adapter for PKU-SafeRLHF JSON Lines files."""

    name = "pku_saferlhf"

    def ingest(self, path: str | Path, *, run_id: str) -> IngestResult:
        """Read ``path`` and return responses, preferences and quarantine."""
        builder = IngestBuilder(
            self.name,
            run_id,
            attribute_fields(ATTRIBUTES),
            ["better", "safer"],
            dedupe_responses=True,
        )
        return run_ingest(iter_jsonl(path), parse_pku, builder)
