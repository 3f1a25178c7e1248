"""Legal-Blocks tokenizer.

Turns contract text into ``Token`` values carrying 1-based (line, col) positions and the text of
their source line (for caret displays). Keywords are upper-case and case-sensitive; identifiers
starting with ``__`` are rejected outright, so nothing resembling Python's dunder machinery ever
reaches the parser. A line ending in ``\\`` continues on the next line; ``#`` starts a comment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import NamedTuple

from rlhf_core.contract.legal_blocks.limits import MAX_EXPR_CHARS
from rlhf_core.errors import ContractSyntaxError

KEYWORDS = frozenset(
    {
        "REQUIRES",
        "INVARIANT",
        "ENSURES",
        "FORALL",
        "EXISTS",
        "IN",
        "PENALTY",
        "SEVERITY",
        "AND",
        "OR",
        "NOT",
        "IMPLIES",
        "IF",
        "THEN",
        "ELSE",
    }
)
"""Reserved upper-case words; they can never be identifiers."""

# Leading blanks are folded into every match (one regex call per token, not two).
_TOKEN_RE = re.compile(
    r"""
    [ \t\f\r]*
    (?:
      (?P<comment>\#[^\n]*)
    | (?P<cont>\\[ \t\f\r]*(?:\n|\Z))
    | (?P<nl>\n)
    | (?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|==|!=|[-+*/^<>(),:.])
    | (?P<end>\Z)
    )
    """,
    re.VERBOSE,
)
_BLANKS_RE = re.compile(r"[ \t\f\r]*")

_BAD_CHAR_HINTS = {
    "'": "string literals are not supported; Legal-Blocks has no strings",
    '"': "string literals are not supported; Legal-Blocks has no strings",
    "=": "'=' is not an operator; use '==' to compare",
    "!": "'!' is not an operator; use NOT, or '!=' to compare",
    "&": "'&' is not an operator; use AND",
    "|": "'|' is not an operator; use OR",
    ";": "';' is not allowed; write one clause per line",
    "\\": "'\\' continues a line only as the last character of the line",
    "[": "brackets are not supported; use parentheses",
    "]": "brackets are not supported; use parentheses",
    "{": "braces are not supported; use parentheses",
    "}": "braces are not supported; use parentheses",
    "%": "'%' is not an operator",
}


class Token(NamedTuple):
    """One lexical token.

    Attributes:
        kind: ``NUM``, ``NAME``, ``BOOL``, ``NL`` (end of a logical line), ``EOF``, a keyword
            (``AND``) or an operator (``<=``).
        text: The token text as written.
        line: 1-based line.
        col: 1-based column.
        source_line: Text of the line, padded so that ``col`` indexes it.
    """

    kind: str
    text: str
    line: int
    col: int
    source_line: str


class _Lines:
    """Maps text offsets to (line, col, padded source line) with the caller's offsets."""

    def __init__(self, text: str, file: str, line: int, col: int, indent: int) -> None:
        self.text = text
        self.file = file
        self.line0 = line
        self.col0 = col
        self.indent = indent
        self._cache: dict[int, str] = {}

    def pad(self, line_idx: int) -> int:
        return self.indent + (self.col0 - 1 if line_idx == 0 else 0)

    def source(self, line_idx: int, line_start: int) -> str:
        cached = self._cache.get(line_idx)
        if cached is None:
            end = self.text.find("\n", line_start)
            stop = end if end >= 0 else len(self.text)
            # Cap absurdly long lines: a caret display never needs more than the limit.
            stop = min(stop, line_start + MAX_EXPR_CHARS + 80)
            raw = self.text[line_start:stop].rstrip("\r")
            cached = " " * self.pad(line_idx) + raw
            self._cache[line_idx] = cached
        return cached

    def locate(self, offset: int) -> tuple[int, int, str]:
        line_idx = self.text.count("\n", 0, offset)
        line_start = self.text.rfind("\n", 0, offset) + 1
        col = offset - line_start + 1 + self.pad(line_idx)
        return self.line0 + line_idx, col, self.source(line_idx, line_start)

    def error(self, offset: int, message: str) -> ContractSyntaxError:
        line, col, src = self.locate(offset)
        return ContractSyntaxError(message, self.file, line, col, src)


def _bad_char_message(text: str, offset: int) -> str:
    ch = text[offset]
    hint = _BAD_CHAR_HINTS.get(ch)
    if hint is not None:
        return f"unexpected {ch!r}: {hint}"
    if ch.isprintable() and ch.isascii():
        return f"unexpected character {ch!r}"
    return f"unexpected character {ch!r} (U+{ord(ch):04X}); Legal-Blocks text is ASCII"


def check_length(
    text: str,
    *,
    file: str = "<string>",
    line: int = 1,
    col: int = 1,
    indent: int = 0,
    newlines: bool = True,
    max_chars: int = MAX_EXPR_CHARS,
) -> None:
    """Reject over-long text before tokenizing it (arguments as for ``tokenize``).

    In expression mode the whole text counts; in clause mode each physical line does (lines
    joined by ``\\`` are still checked as one logical line by ``tokenize``).

    Raises:
        ContractSyntaxError: Positioned at the first character beyond the limit.
    """
    what = "clause" if newlines else "expression"
    message = f"{what} is longer than {max_chars} characters; split it into smaller {what}s"
    lines = _Lines(text, file, line, col, indent)
    if not newlines:
        if len(text) > max_chars:
            raise lines.error(max_chars, message)
        return
    start = 0
    for physical in text.split("\n"):
        if len(physical) > max_chars:
            raise lines.error(start + max_chars, message)
        start += len(physical) + 1


def tokenize(
    text: str,
    *,
    file: str = "<string>",
    line: int = 1,
    col: int = 1,
    indent: int = 0,
    newlines: bool = True,
    max_chars: int = MAX_EXPR_CHARS,
) -> Iterator[Token]:
    """Yield the tokens of ``text`` lazily, ending with one ``EOF`` token.

    Args:
        text: Legal-Blocks source.
        file: File name reported in positions.
        line: Line number of the first line of ``text`` in ``file``.
        col: Column of the first character of ``text`` on its first line.
        indent: Columns added to every line (a YAML block scalar's indentation).
        newlines: Emit ``NL`` tokens at the end of logical lines (clause mode); when False,
            newlines are whitespace (one expression spanning lines).
        max_chars: Longest logical line (or whole text when ``newlines`` is False).

    Yields:
        Tokens in source order.

    Raises:
        ContractSyntaxError: Unknown character, dunder identifier, malformed or out-of-range
            number, or a logical line longer than ``max_chars``.
    """
    lines = _Lines(text, file, line, col, indent)
    n = len(text)
    pos = 0
    line_idx = 0
    line_start = 0
    logical_start = 0
    while pos < n:
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            bad = _BLANKS_RE.match(text, pos).end()  # type: ignore[union-attr]
            raise lines.error(bad, _bad_char_message(text, bad))
        kind = match.lastgroup
        end = match.end()
        if end - logical_start > max_chars:
            raise lines.error(
                logical_start + max_chars,
                f"{'clause' if newlines else 'expression'} is longer than {max_chars} characters;"
                f" split it into smaller {'clause' if newlines else 'expression'}s",
            )
        if kind == "end":
            break
        start = match.start(kind)
        tok_col = start - line_start + 1 + lines.pad(line_idx)
        tok_text = match.group(kind)
        if kind in ("nl", "cont"):
            if kind == "nl" and newlines:
                src = lines.source(line_idx, line_start)
                yield Token("NL", "\n", lines.line0 + line_idx, tok_col, src)
            if kind == "nl" or tok_text.endswith("\n"):
                line_idx += 1
                line_start = end
            if kind == "nl":
                logical_start = end
        elif kind != "comment":
            src = lines.source(line_idx, line_start)
            yield Token(
                _kind(kind, tok_text, text, end, lines),
                tok_text,
                lines.line0 + line_idx,
                tok_col,
                src,
            )
        pos = end
    # End of input sits just after the last visible character: a trailing carriage return (a
    # CRLF file cut before its LF) is not a column of the displayed source line.
    last = len(text[line_start:n].rstrip("\r"))
    yield Token(
        "EOF",
        "",
        lines.line0 + line_idx,
        last + 1 + lines.pad(line_idx),
        lines.source(line_idx, line_start),
    )


def _kind(group: str | None, tok: str, text: str, end: int, lines: _Lines) -> str:
    """Classify a matched token, rejecting dunders and malformed numbers."""
    start = end - len(tok)
    if group == "name":
        if tok.startswith("__"):
            raise lines.error(
                start, f"identifier {tok!r} is not allowed: names starting with '__' are reserved"
            )
        if tok in KEYWORDS:
            return tok
        return "BOOL" if tok in ("true", "false") else "NAME"
    if group == "num":
        nxt = text[end] if end < len(text) else ""
        if nxt and (nxt.isalnum() or nxt in "_."):
            stop = end
            while stop < min(len(text), end + 40) and (text[stop].isalnum() or text[stop] in "_."):
                stop += 1
            raise lines.error(start, f"malformed number {text[start:stop]!r}")
        if not math.isfinite(float(tok)):
            raise lines.error(start, f"number {tok} is out of range (larger than ~1.8e308)")
        return "NUM"
    if tok == "*" and text.startswith("*", end):
        raise lines.error(start, "'**' is not an operator; use '^' for powers")
    return tok
