"""Legal-Blocks: the reward-contract clause language (docs/contracts.md#legal-blocks).

Text is tokenized and parsed into the frozen AST of ``ast.py`` (with source positions),
type-checked against the contract's declared inputs, and printed back in canonical form
(``parse(print(ast)) == ast``). Nothing is ever evaluated with Python's ``eval``/``exec``.
"""

from rlhf_core.contract.legal_blocks.checker import (
    TypeEnv,
    check_clause,
    check_clauses,
    check_expr,
)
from rlhf_core.contract.legal_blocks.functions import FUNCTIONS, FunctionSig
from rlhf_core.contract.legal_blocks.limits import MAX_DEPTH, MAX_EXPR_CHARS, MAX_SOURCE_CHARS
from rlhf_core.contract.legal_blocks.parser import parse_clauses, parse_expr
from rlhf_core.contract.legal_blocks.printer import (
    format_clause,
    format_clauses,
    format_expr,
    format_number,
)
from rlhf_core.contract.legal_blocks.walk import children, columns, names, walk

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPR_CHARS",
    "MAX_SOURCE_CHARS",
    "FunctionSig",
    "TypeEnv",
    "check_clause",
    "check_clauses",
    "check_expr",
    "children",
    "columns",
    "format_clause",
    "format_clauses",
    "format_expr",
    "format_number",
    "names",
    "parse_clauses",
    "parse_expr",
    "walk",
]
