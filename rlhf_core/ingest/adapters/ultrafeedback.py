"""UltraFeedback binarized (trl-lib/ultrafeedback_binarized): chosen vs rejected with scores.

``chosen`` / ``rejected`` are either plain strings or chat message lists
(``[{"role": "user", ...}, {"role": "assistant", "content": ...}]``, the last assistant message
is the response). ``metadata.score_chosen`` / ``score_rejected`` (1-10) become the responses'
``score``; the pair is (a = chosen, b = rejected) with ``better = 1``, or ``0`` when the scores
tie (ties are kept and marked, never dropped); ``margin = score_chosen - score_rejected``.
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
from rlhf_core.ingest.adapters.records import (
    RecordError,
    check_text,
    get_mapping,
    get_text,
    get_value,
)
from rlhf_core.lake.schemas import attribute_fields


def _response_text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if isinstance(value, list):
        replies = [m for m in value if isinstance(m, Mapping) and m.get("role") == "assistant"]
        if not replies:
            raise RecordError("missing_field", f"field '{key}' has no assistant message")
        return check_text(replies[-1].get("content"), f"{key}[-1].content")
    return get_text(record, key)


def parse_ultrafeedback(record: Mapping[str, Any]) -> ParsedRow:
    """One UltraFeedback line -> chosen and rejected responses and one ``better`` pair."""
    prompt = get_text(record, "prompt")
    metadata = get_mapping(record, "metadata")
    score_chosen = get_value(metadata, "score_chosen", "float")
    score_rejected = get_value(metadata, "score_rejected", "float")
    chosen = ParsedResponse(prompt, _response_text(record, "chosen"), {"score": score_chosen})
    rejected = ParsedResponse(prompt, _response_text(record, "rejected"), {"score": score_rejected})
    label = 0 if score_chosen == score_rejected else 1
    margin = score_chosen - score_rejected
    return ParsedRow([chosen, rejected], [ParsedPair(0, 1, {"better": label}, margin)])


class UltraFeedbackAdapter:
    """Adapter for UltraFeedback binarized JSON Lines files."""

    name = "ultrafeedback"

    def ingest(self, path: str | Path, *, run_id: str) -> IngestResult:
        """Read ``path`` and return responses, preferences and quarantine."""
        builder = IngestBuilder(
            self.name, run_id, attribute_fields(["score"]), ["better"], dedupe_responses=True
        )
        return run_ingest(iter_jsonl(path), parse_ultrafeedback, builder)
