"""Safe YAML loading of contract files with a line/column for every key and value.

Loading is two passes over the same text with ruamel.yaml: the event stream is scanned first
and rejects anchors, aliases, explicit tags and multi-document files (no YAML feature that can
construct objects or blow up memory survives); then the round-trip loader builds the mapping,
which records ``(line, col)`` for every key, value and list item and refuses duplicate keys.
Pydantic errors are mapped back to ``file:line:col`` and a YAML path such as
``stakeholders[1].weight``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    NodeEvent,
)

from rlhf_core.contract.spec import ContractSpec, LocatedValueError
from rlhf_core.errors import ContractSchemaError

MAX_CONTRACT_BYTES = 512 * 1024
MAX_YAML_DEPTH = 32

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceMap:
    """Where each YAML path sits in the contract text.

    Attributes:
        file: The file name used in error messages.
        text: The full contract text.
        data: The round-trip-loaded document (CommentedMap with line/column records).
    """

    file: str
    text: str
    data: Any

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at ``loc`` (or of its key when ``key``).

        Follows ``loc`` as deep as the document goes; a missing tail resolves to the deepest
        existing ancestor, so errors about missing keys point at the enclosing mapping.
        """
        node = self.data
        pos = (0, 0)
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                line, col = node.lc.key(part) if (key and last) else node.lc.value(part)
                if not (key and last) and not _is_scalar(node[part]):
                    line, col = node.lc.key(part)
                pos = (line, col)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                pos = node.lc.item(part)
                node = node[part]
            else:
                break
        return pos[0] + 1, pos[1] + 1

    def line_text(self, line: int) -> str | None:
        """The source text of 1-based ``line`` (None when out of range)."""
        lines = self.text.splitlines()
        return lines[line - 1] if 1 <= line <= len(lines) else None

    def schema_error(self, loc: Loc, message: str, *, key: bool = False) -> ContractSchemaError:
        """A ContractSchemaError at ``loc`` naming its YAML path."""
        line, col = self.position(loc, key=key)
        path = yaml_path(loc)
        where = f"{path}: " if path else ""
        return ContractSchemaError(f"{where}{message}", self.file, line, col, self.line_text(line))


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (CommentedMap, CommentedSeq))


def yaml_path(loc: Loc) -> str:
    """Render a location tuple as ``stakeholders[1].weight``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_contract_text(path: str | Path) -> str:
    """Read a contract file as UTF-8, refusing files over ``MAX_CONTRACT_BYTES``.

    Raises:
        ContractSchemaError: Missing, unreadable, oversized or non-UTF-8 file.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CONTRACT_BYTES:
            raise ContractSchemaError(
                f"contract file is {size} bytes, over the {MAX_CONTRACT_BYTES}-byte limit; "
                "contracts are small, split long expressions into stakeholders and clauses",
                str(p),
            )
        return p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ContractSchemaError("contract file not found; check the path", str(p)) from None
    except UnicodeDecodeError as exc:
        raise ContractSchemaError(
            f"contract file is not UTF-8 (byte {exc.start}); save it as UTF-8", str(p)
        ) from None
    except OSError as exc:
        raise ContractSchemaError(f"cannot read contract file: {exc.strerror}", str(p)) from None


def _check_events(yaml: YAML, text: str, file: str) -> None:
    documents = 0
    depth = 0
    for event in yaml.parse(io.StringIO(text)):
        mark = event.start_mark
        where = (file, mark.line + 1, mark.column + 1) if mark is not None else (file, 1, 1)
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ContractSchemaError(
                    f"YAML nests deeper than {MAX_YAML_DEPTH} levels; contracts are shallow", *where
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise ContractSchemaError(
                    "more than one YAML document; put one contract per file", *where
                )
        if isinstance(event, AliasEvent) or (
            isinstance(event, NodeEvent) and event.anchor is not None
        ):
            raise ContractSchemaError(
                "YAML anchors and aliases are not allowed in contracts; write values out", *where
            )
        tag = getattr(event, "tag", None)
        if tag is not None and str(tag) not in ("!", "None"):
            raise ContractSchemaError(
                f"YAML tag {tag} is not allowed in contracts; remove the tag", *where
            )


def _plain(value: Any) -> Any:
    """Convert ruamel's round-trip containers and scalar subclasses to plain Python."""
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, (int, float, bool)) else k: _plain(v)
                for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def parse_yaml(text: str, file: str = "<string>") -> SourceMap:
    """Parse contract YAML safely into a :class:`SourceMap`.

    Raises:
        ContractSchemaError: Bad YAML, duplicate keys, anchors/aliases/tags, not a mapping.
    """
    if len(text.encode("utf-8")) > MAX_CONTRACT_BYTES:
        raise ContractSchemaError(
            f"contract text is over the {MAX_CONTRACT_BYTES}-byte limit; contracts are small",
            file,
        )
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        _check_events(yaml, text, file)
        data = yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if "duplicate key" in str(exc).lower():
            what = f"{what}; each key may appear once per mapping"
        lines = text.splitlines()
        src = lines[line - 1] if 1 <= line <= len(lines) else None
        raise ContractSchemaError(f"invalid YAML: {what}", file, line, col, src) from None
    except YAMLError as exc:
        raise ContractSchemaError(f"invalid YAML: {' '.join(str(exc).split())}", file) from None
    if not isinstance(data, CommentedMap):
        raise ContractSchemaError(
            "a contract file must be a YAML mapping with keys contract, version, inputs, "
            "stakeholders, aggregation, ...; see `rlhf-wizard contract init`",
            file,
        )
    return SourceMap(file=file, text=text, data=data)


def _trim_loc(source: SourceMap, loc: Loc, *, missing: bool) -> Loc:
    """Keep the part of a pydantic location that exists in the YAML document.

    Pydantic appends union-member names (``int``, ``float``) and validator names to
    locations; they are not YAML keys. A missing key (``missing``) is kept as the last part.
    """
    node: Any = source.data
    kept: list[str | int] = []
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            if missing and isinstance(node, CommentedMap) and isinstance(part, str):
                kept.append(part)
            break
        kept.append(part)
    return tuple(kept)


def _error_message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown key; remove it or fix its spelling (keys: docs/contracts.md#file-format)"
    if kind == "missing":
        return "required key is missing; add it"
    if kind in ("int_type", "float_type"):
        return f"expected a number, got {err.get('input')!r}"
    if kind == "too_short":
        need = (err.get("ctx") or {}).get("min_length", 1)
        return f"needs at least {need} entry; declare one"
    if kind == "literal_error":
        return f"{msg.replace('Input should be', 'must be')}, got {err.get('input')!r}"
    if kind == "string_pattern_mismatch":
        return f"{err.get('input')!r} has the wrong format: {_pattern_hint(err)}"
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    return f"{msg.replace('Input should be', 'must be')}, got {err.get('input')!r}; fix the value"


def _pattern_hint(err: Mapping[str, Any]) -> str:
    pattern = str((err.get("ctx") or {}).get("pattern", ""))
    if pattern.startswith("^sha256"):
        return "expected sha256:<64 lowercase hex digits> (the hash of the superseded version)"
    if pattern.startswith("^ed25519"):
        return "expected ed25519:<base64 of the 32-byte raw key> (from `rlhf-wizard contract keygen`)"
    if pattern.startswith("^(0|"):
        return "expected a semantic version such as 1.0.0"
    if pattern.startswith("^[A-Za-z_]"):
        return "expected an identifier (letters, digits, underscore; not starting with a digit)"
    return f"expected to match {pattern}"


def validate_spec(source: SourceMap) -> ContractSpec:
    """Validate the parsed document against :class:`ContractSpec`.

    Raises:
        ContractSchemaError: The first validation error, located in the YAML.
    """
    try:
        return ContractSpec.model_validate(_plain(source.data))
    except ValidationError as exc:
        # A misspelt key yields "unknown key" and "missing key"; the unknown one is the clue.
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        err = errors[0]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, LocatedValueError):
            loc = tuple(err["loc"]) + ctx_error.loc
            raise source.schema_error(loc, ctx_error.message) from None
        loc = _trim_loc(source, tuple(err["loc"]), missing=err.get("type") == "missing")
        message = _error_message(err)
        raise source.schema_error(loc, message, key=err.get("type") == "extra_forbidden") from None


def load_spec(path: str | Path) -> tuple[ContractSpec, SourceMap]:
    """Read, parse and validate a contract file.

    Returns:
        The validated spec and the source map used to locate later (Legal-Blocks) errors.

    Raises:
        ContractSchemaError: Unreadable file, bad YAML or a schema violation.
    """
    text = read_contract_text(path)
    source = parse_yaml(text, str(path))
    return validate_spec(source), source
