"""Anthropic HH-RLHF: two full transcripts per line, ``chosen`` and ``rejected``.

The prompt is the transcript up to the LAST ``"\\n\\nAssistant:"``; the response is the text after
it (leading whitespace stripped). Both transcripts must share that prompt, otherwise the row is
quarantined (``prompt_mismatch``: in a few upstream rows the rejected reply embeds a fake
``Human:`` turn, so its last ``Assistant:`` split lands inside the reply). The pair is
(a = chosen, b = rejected) with ``better = 1``. Responses have no attributes.

The prompt keeps the dialogue: ``prompt`` is the transcript text as it is (its hash is the
``prompt_id``), ``prompt_messages`` every turn of it in order, ``Human`` as ``user`` and
``Assistant`` as ``assistant``, each turn's text stripped of surrounding whitespace.
"""

from __future__ import annotations

import re
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
from rlhf_core.ingest.adapters.messages import Message
from rlhf_core.ingest.adapters.readers import iter_jsonl
from rlhf_core.ingest.adapters.records import RecordError, get_text

ASSISTANT_MARK = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def transcript_turns(prompt: str) -> list[Message]:
    """The turns of an HH prompt transcript, in order, as ``{role, content}`` messages.

    Text before the first ``"\n\nHuman:"`` (upstream rows always start with one) is kept as a
    user turn when it is not blank.
    """
    parts = _TURN.split(prompt)
    turns = [{"role": "user", "content": parts[0].strip()}] if parts[0].strip() else []
    for mark, text in zip(parts[1::2], parts[2::2], strict=True):
        turns.append({"role": _ROLES[mark], "content": text.strip()})
    return turns


def split_transcript(transcript: str, key: str) -> tuple[str, str]:
    """``(prompt, response)`` of an HH transcript, split at the last assistant turn."""
    cut = transcript.rfind(ASSISTANT_MARK)
    if cut < 0:
        raise RecordError("missing_field", f"field '{key}' has no '\\n\\nAssistant:' turn")
    return transcript[:cut], transcript[cut + len(ASSISTANT_MARK) :].lstrip()


def parse_hh(record: Mapping[str, Any]) -> ParsedRow:
    """One HH-RLHF line -> chosen and rejected responses and one ``better`` pair."""
    prompt, chosen = split_transcript(get_text(record, "chosen"), "chosen")
    other_prompt, rejected = split_transcript(get_text(record, "rejected"), "rejected")
    if prompt != other_prompt:
        raise RecordError(
            "prompt_mismatch",
            "chosen and rejected transcripts differ before their last '\\n\\nAssistant:' turn",
        )
    turns = transcript_turns(prompt)
    sides = [ParsedResponse(prompt, chosen, messages=turns),
             ParsedResponse(prompt, rejected, messages=turns)]
    return ParsedRow(sides, [ParsedPair(0, 1, {"better": 1})])


class HhRlhfAdapter:
    """Adapter for HH-RLHF (helpful-base, harmless-base ...) JSON Lines files."""

    name = "hh_rlhf"

    def ingest(self, path: str | Path, *, run_id: str) -> IngestResult:
        """Read ``path`` and return responses, preferences and quarantine."""
        builder = IngestBuilder(self.name, run_id, [], ["better"], dedupe_responses=True)
        return run_ingest(iter_jsonl(path), parse_hh, builder)
