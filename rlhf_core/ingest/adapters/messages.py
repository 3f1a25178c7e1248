"""Conversations in source rows: chat-format message lists, and the prompt they render to.

A chat-format column holds a list of ``{"role": ..., "content": ...}`` messages (the Hugging Face
/ TRL layout). Its LAST ``assistant`` message is the response; every message before it is the
prompt (``prompt_messages``, kept turn by turn). The ``prompt`` text column is that prompt
rendered by :func:`render_prompt`: a single user turn renders as its content (so a chat-format
source and a plain one give the same ``prompt`` and ``prompt_id``), longer conversations as
``"User: …\\n\\nAssistant: …"`` turns.

Every problem with one row's messages is a :class:`RecordError` (the row is quarantined):
``wrong_type`` when the value is not a list of messages with string ``role`` and ``content``,
``bad_conversation`` when it has no assistant turn, turns after the last one, or no turn before
it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlhf_core.ingest.adapters.records import RecordError, check_text

Message = dict[str, str]


def user_turn(prompt: str) -> list[Message]:
    """A single-turn prompt as messages: ``[{"role": "user", "content": prompt}]``."""
    return [{"role": "user", "content": prompt}]


def check_messages(value: Any, key: str) -> list[Message]:
    """``value`` as a list of ``{role, content}`` messages with string fields.

    Raises:
        RecordError: ``missing_field`` (null), ``wrong_type`` (not a list of such messages) or
            ``bad_utf8``.
    """
    if value is None:
        raise RecordError("missing_field", f"required field '{key}' is null or missing")
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise RecordError("wrong_type", f"field '{key}' must be a list of {{role, content}} "
                                        f"messages, got {type(value).__name__}")
    out = []
    for index, message in enumerate(value):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise RecordError("wrong_type", f"field '{key}' message {index} must be an object "
                                            "with 'role' and 'content'")
        where = f"{key}[{index}]"
        out.append({"role": check_text(message["role"], f"{where}.role"),
                    "content": check_text(message["content"], f"{where}.content")})
    return out


def split_conversation(value: Any, key: str) -> tuple[list[Message], str]:
    """``(prompt_messages, response)`` of a conversation: the response is its last assistant
    turn, the prompt every turn before it.

    Raises:
        RecordError: See :func:`check_messages`; ``bad_conversation`` when there is no assistant
            turn, turns follow the last one, or no turn precedes it.
    """
    messages = check_messages(value, key)
    roles = [m["role"] for m in messages]
    if "assistant" not in roles:
        raise RecordError("bad_conversation", f"field '{key}' has no assistant turn to take as "
                                              "the response")
    last = len(roles) - 1 - roles[::-1].index("assistant")
    if last != len(messages) - 1:
        raise RecordError("bad_conversation",
                          f"field '{key}' has {len(messages) - 1 - last} turn(s) after its last "
                          "assistant turn; the response must be the conversation's last turn")
    if last == 0:
        raise RecordError("bad_conversation", f"field '{key}' has no turn before its assistant "
                                              "response (no prompt)")
    return messages[:last], messages[last]["content"]


def render_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """The prompt text of ``messages``: a lone user turn is its content; otherwise each turn as
    ``"<Role>: <content>"`` (role capitalised), separated by blank lines."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
