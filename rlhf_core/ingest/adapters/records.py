"""Source rows, typed field access and the row-level error that sends a row to quarantine.

Adapters never crash on a bad line: every problem with one source row is a :class:`RecordError`
carrying a rule name (``bad_json``, ``truncated_line``, ``bad_utf8``, ``missing_field``,
``wrong_type`` ...) and a one-line reason; the ingest loop turns it into a quarantine row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlhf_core.errors import DataError


class RecordError(DataError):
    """One source row cannot be used; it goes to quarantine with ``rule`` and ``reason``.

    Args:
        rule: Short machine-readable rule name (e.g. ``missing_field``).
        reason: One-line human explanation naming the field and the offending value.
    """

    def __init__(self, rule: str, reason: str) -> None:
        self.rule = rule
        self.reason = reason
        super().__init__(f"{rule}: {reason}")


@dataclass(frozen=True)
class SourceRow:
    """One row read from a source file.

    Attributes:
        line: 1-based line (JSONL, CSV) or row number (Parquet) in the source.
        raw: The raw record text (the JSON line, or the row serialised as JSON).
        record: The decoded record, or ``None`` when it could not be decoded.
        error: Why the row could not be decoded, or ``None``.
    """

    line: int
    raw: str
    record: Mapping[str, Any] | None
    error: RecordError | None = None


def _missing(record: Mapping[str, Any], key: str) -> RecordError:
    if key in record:
        return RecordError("missing_field", f"required field '{key}' is null")
    return RecordError("missing_field", f"required field '{key}' is missing")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_text(value: Any, key: str) -> str:
    """Return ``value`` as valid UTF-8 text, or raise ``wrong_type`` / ``bad_utf8``."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(
                "bad_utf8", f"field '{key}' is not valid UTF-8 (byte {exc.start})"
            ) from None
    if not isinstance(value, str):
        raise RecordError(
            "wrong_type",
            f"field '{key}' must be a string, got {type(value).__name__} {_describe(value)}",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError(
            "bad_utf8", f"field '{key}' holds an unpaired surrogate at character {exc.start}"
        ) from None
    return value


def get_text(record: Mapping[str, Any], key: str) -> str:
    """Required text field."""
    value = record.get(key)
    if value is None:
        raise _missing(record, key)
    return check_text(value, key)


def to_float(value: Any, key: str) -> float:
    """A finite-or-not float from an int/float (bools and strings are wrong types)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(
            "wrong_type",
            f"field '{key}' must be a number, got {type(value).__name__} {_describe(value)}",
        )
    result = float(value)
    if math.isnan(result):
        raise RecordError("wrong_type", f"field '{key}' is NaN")
    return result


def to_int(value: Any, key: str) -> int:
    """An int from an int or an integral float (bools and strings are wrong types)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(
            "wrong_type",
            f"field '{key}' must be an integer, got {type(value).__name__} {_describe(value)}",
        )
    return value


def to_bool(value: Any, key: str) -> bool:
    """A bool (only JSON true/false are accepted)."""
    if not isinstance(value, bool):
        raise RecordError(
            "wrong_type",
            f"field '{key}' must be a boolean, got {type(value).__name__} {_describe(value)}",
        )
    return value


def get_value(record: Mapping[str, Any], key: str, dtype: str, *, required: bool = True) -> Any:
    """A typed field: ``dtype`` is ``float``, ``int``, ``bool`` or ``string``.

    Returns ``None`` for a null/missing optional field; raises :class:`RecordError` otherwise.
    """
    value = record.get(key)
    if value is None:
        if required:
            raise _missing(record, key)
        return None
    converters = {"float": to_float, "int": to_int, "bool": to_bool, "string": check_text}
    return converters[dtype](value, key)


def get_mapping(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """Required JSON-object field."""
    value = record.get(key)
    if value is None:
        raise _missing(record, key)
    if not isinstance(value, Mapping):
        raise RecordError(
            "wrong_type", f"field '{key}' must be an object, got {type(value).__name__}"
        )
    return value
