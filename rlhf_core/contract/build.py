"""Turn a validated :class:`ContractSpec` into the checked, normalised :class:`ContractProgram`.

Utilities and clauses are parsed and type-checked by the Legal-Blocks front end with source
positions pointing into the YAML file (a ``|`` block's first content line is the key's line + 1),
weights are normalised to sum to 1 and defaults are filled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from rlhf_core.contract.hashing import contract_hash
from rlhf_core.contract.legal_blocks import check_clauses, check_expr, parse_clauses, parse_expr
from rlhf_core.contract.legal_blocks.ast import Clause, Expr
from rlhf_core.contract.loader import SourceMap, load_spec, parse_yaml, validate_spec
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram
from rlhf_core.contract.spec import ContractSpec
from rlhf_core.errors import SourceLocatedError

T = TypeVar("T")


@dataclass(frozen=True)
class LoadedContract:
    """A contract file, validated and compiled to a program.

    Attributes:
        spec: The validated YAML model.
        program: The checked, normalised program compilers consume.
        path: The file it came from (None for text loaded from a string).
        text: The exact file text (its bytes are what signatures bind).
    """

    spec: ContractSpec
    program: ContractProgram
    path: Path | None
    text: str

    @cached_property
    def hash(self) -> str:
        """The canonical contract hash ``sha256:<hex>`` (see :mod:`rlhf_core.contract.hashing`)."""
        return contract_hash(self)


def _input_decls(spec: ContractSpec) -> tuple[InputDecl, ...]:
    return tuple(
        InputDecl(
            name=name,
            dtype=decl.dtype,
            lo=None if decl.range is None else float(decl.range[0]),
            hi=None if decl.range is None else float(decl.range[1]),
            on_null=decl.on_null,
            default=decl.default,
        )
        for name, decl in spec.inputs.items()
    )


def _value_start(source: SourceMap, loc: tuple[str | int, ...]) -> tuple[int, int, bool]:
    """(line, col, is_block) of the first character of a scalar's content.

    Quoted scalars start one column after the quote; block scalars (``|``/``>``) start on the
    next line at column 1 of the dedented text (their indentation is added afterwards).
    """
    line, col = source.position(loc)
    text = source.line_text(line) or ""
    first = text[col - 1 : col]
    if first in ("'", '"'):
        return line, col + 1, False
    if first in ("|", ">"):
        return line + 1, 1, True
    return line, col, False


def _block_indent(source: SourceMap, line: int) -> int:
    """Indentation of a block scalar whose content starts on ``line`` (first non-blank line)."""
    for n in range(line, line + 10_000):
        text = source.line_text(n)
        if text is None:
            return 0
        if text.strip():
            return len(text) - len(text.lstrip(" "))
    return 0


def _relocated(exc: SourceLocatedError, source: SourceMap, first_line: int, shift: int) -> Exception:
    """The same error with its column moved by ``shift`` and the caret line taken from the file.

    The Legal-Blocks front end only sees the scalar's text; errors are re-pointed at the YAML
    line (a block scalar's indentation is added to the column).
    """
    if exc.file != source.file or exc.line < first_line:
        return exc
    line_text = source.line_text(exc.line)
    if line_text is None:
        return exc
    return type(exc)(exc.message, exc.file, exc.line, exc.col + shift, line_text)


def _located(
    source: SourceMap | None, first_line: int, shift: int, fn: Callable[[], T]
) -> T:
    try:
        return fn()
    except SourceLocatedError as exc:
        if source is None:
            raise
        moved = _relocated(exc, source, first_line, shift)
        if moved is exc:
            raise
        raise moved from exc


def _parse_utility(
    spec: ContractSpec, index: int, inputs: tuple[InputDecl, ...], source: SourceMap | None
) -> Expr:
    holder = spec.stakeholders[index]
    if source is None:
        file, line, col, shift = f"<{spec.contract}>", 1, 1, 0
    else:
        file = source.file
        line, col, is_block = _value_start(source, ("stakeholders", index, "utility"))
        shift = _block_indent(source, line) if is_block else 0

    def run() -> Expr:
        expr = parse_expr(holder.utility, file=file, line=line, col=col)
        check_expr(expr, inputs, allow_reward=False, expect="number")
        return expr

    return _located(source, line, shift, run)


def _parse_clauses(
    spec: ContractSpec, inputs: tuple[InputDecl, ...], source: SourceMap | None
) -> tuple[Clause, ...]:
    if not spec.clauses.strip():
        return ()
    if source is None:
        file, line, shift = f"<{spec.contract}>", 1, 0
    else:
        file = source.file
        line, shift = _clause_position(source)

    def run() -> tuple[Clause, ...]:
        # The indentation goes to the tokenizer, so AST positions (used by lint warnings) point
        # into the YAML file as well as error positions.
        clauses = tuple(parse_clauses(spec.clauses, file=file, line=line, indent=shift))
        check_clauses(clauses, inputs)
        return clauses

    return _located(source, line, 0, run)


def _clause_position(source: SourceMap) -> tuple[int, int]:
    """(first line, column shift) for the clauses text inside the YAML file."""
    line, col, is_block = _value_start(source, ("clauses",))
    if is_block:
        return line, _block_indent(source, line)
    return line, col - 1


def build_program(spec: ContractSpec, source: SourceMap | None = None) -> ContractProgram:
    """Parse, type-check and normalise a contract spec.

    Args:
        spec: A validated contract model.
        source: Where the spec came from; when given, Legal-Blocks errors point into the YAML.

    Returns:
        The frozen program: weights normalised to sum 1, lexicographic order completed with
        the undeclared-order stakeholders in declaration order, tolerance defaulting to 0.

    Raises:
        ContractSyntaxError: A utility or clause does not parse.
        ContractTypeError: A utility is not numeric, names an undeclared input, or a clause
            is ill-typed.
    """
    inputs = _input_decls(spec)
    total = sum(float(h.weight) for h in spec.stakeholders)
    holders = []
    for i, holder in enumerate(spec.stakeholders):
        expr = _parse_utility(spec, i, inputs, source)
        holders.append(
            StakeholderProgram(
                name=holder.name,
                weight=float(holder.weight) / total,
                utility=expr,
                disagreement=None if holder.disagreement is None else float(holder.disagreement),
            )
        )
    agg = spec.aggregation
    lex_order: tuple[str, ...] = ()
    if agg.rule == "lexicographic":
        named = list(agg.order or ())
        lex_order = tuple(named + [h.name for h in spec.stakeholders if h.name not in named])
    return ContractProgram(
        name=spec.contract,
        inputs=inputs,
        stakeholders=tuple(holders),
        rule=agg.rule,
        clauses=_parse_clauses(spec, inputs, source),
        lex_order=lex_order,
        lex_tolerance=float(agg.tolerance or 0.0),
        floor_reward=float(agg.floor_reward),
        max_candidates=spec.max_candidates,
        acknowledge=tuple(spec.acknowledge),
    )


def load_contract_text(text: str, file: str = "<string>") -> LoadedContract:
    """Load a contract from YAML text (errors name ``file``)."""
    source = parse_yaml(text, file)
    spec = validate_spec(source)
    return LoadedContract(spec=spec, program=build_program(spec, source), path=None, text=text)


def load_contract(path: str | Path) -> LoadedContract:
    """Read, validate, parse and type-check a contract file.

    Args:
        path: The contract YAML file.

    Returns:
        The spec, its compiled program, the path and the exact text.

    Raises:
        ContractSchemaError: Unreadable file, bad YAML, schema violation (with YAML path).
        ContractSyntaxError: A utility or clause does not parse (file:line:col).
        ContractTypeError: A utility or clause is ill-typed or names an undeclared input.
    """
    spec, source = load_spec(path)
    return LoadedContract(
        spec=spec, program=build_program(spec, source), path=Path(path), text=source.text
    )
