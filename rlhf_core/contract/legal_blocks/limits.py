"""Resource limits of the Legal-Blocks front end.

Contracts are untrusted text: every limit turns a pathological input (10,000 nested
parentheses, a megabyte-long expression) into a ``ContractSyntaxError`` with a position instead
of a ``RecursionError`` or a long stall. Downstream consumers (checker, printer, compilers) walk
the AST recursively and rely on ``MAX_DEPTH``.
"""

from __future__ import annotations

MAX_DEPTH = 200
"""Deepest allowed nesting, both syntactic (parentheses, prefix operators) and of the AST."""

MAX_EXPR_CHARS = 64 * 1024
"""Longest expression (``parse_expr``) or logical clause line (``parse_clauses``)."""

MAX_SOURCE_CHARS = 1024 * 1024
"""Longest clause block accepted by ``parse_clauses``."""
