"""Legal-Blocks parser: text -> AST with source positions (docs/contracts.md#grammar).

``parse_expr`` parses one expression (a stakeholder utility); ``parse_clauses`` parses a clause
block, one clause per logical line. Text length is bounded by ``MAX_EXPR_CHARS`` per expression
or clause and ``MAX_SOURCE_CHARS`` per block; nesting by ``MAX_DEPTH`` (see ``expressions``).
"""

from __future__ import annotations

from rlhf_core.contract.legal_blocks.ast import Clause, Expr
from rlhf_core.contract.legal_blocks.expressions import ExprParser
from rlhf_core.contract.legal_blocks.lexer import Token, check_length, tokenize
from rlhf_core.contract.legal_blocks.limits import MAX_SOURCE_CHARS
from rlhf_core.errors import ContractSyntaxError

_CLAUSE_KINDS = ("REQUIRES", "INVARIANT", "ENSURES", "FORALL", "EXISTS")


class _ClauseParser(ExprParser):
    """Adds clause syntax (labels, kinds, quantifier heads, INVARIANT options)."""

    def clause(self) -> tuple[Token | None, Clause]:
        """One clause; the label token is returned separately (None when generated later)."""
        start = self.tok
        label_tok = None
        if start.kind == "NAME" and self.peek().kind == ":":
            label_tok = self.advance()
            self.advance()
        kw = self.tok
        if kw.kind not in _CLAUSE_KINDS:
            label_hint = "" if label_tok is not None else " or a 'label:'"
            raise self.error(
                f"expected REQUIRES, INVARIANT, ENSURES, FORALL or EXISTS{label_hint},"
                f" found {self.describe(kw)}"
            )
        self.advance()
        var = None
        penalty = severity = None
        if kw.kind in ("FORALL", "EXISTS"):
            var = self.expect("NAME", f"a variable name after {kw.kind}").text
            self.expect("IN", f"IN after '{kw.kind} {var}'")
            domain = self.tok
            if domain.kind != "NAME" or domain.text != "prompt":
                raise self.error(
                    "expected 'prompt' after IN (quantifiers range over the candidates of one"
                    f" prompt), found {self.describe(domain)}"
                )
            self.advance()
            self.expect(":", f"':' after '{kw.kind} {var} IN prompt'")
        expr = self.expression()
        if kw.kind == "INVARIANT":
            penalty, severity = self._invariant_options()
        elif self.tok.kind in ("PENALTY", "SEVERITY"):
            raise self.error(f"{self.tok.kind} applies only to INVARIANT clauses, not {kw.kind}")
        self.expect_end()
        pos = self.pos(label_tok if label_tok is not None else kw)
        label = label_tok.text if label_tok is not None else ""
        return label_tok, Clause(label, kw.kind, expr, penalty, severity, var, pos=pos)  # type: ignore[arg-type]

    def _invariant_options(self) -> tuple[float, float]:
        values: dict[str, float] = {}
        while self.tok.kind in ("PENALTY", "SEVERITY"):
            word = self.advance()
            if word.kind in values:
                raise self.error(f"{word.kind} given twice in one clause", word)
            num = self.expect("NUM", f"a non-negative number after {word.kind}")
            values[word.kind] = float(num.text)
        return values.get("PENALTY", 1.0), values.get("SEVERITY", 1.0)


def parse_expr(text: str, *, file: str = "<string>", line: int = 1, col: int = 1) -> Expr:
    """Parse one Legal-Blocks expression (e.g. a stakeholder utility).

    Newlines inside ``text`` are whitespace; ``#`` comments are allowed.

    Args:
        text: Expression source.
        file: File name reported in errors and positions.
        line: Line of ``text``'s first character in ``file``.
        col: Column of ``text``'s first character in ``file``.

    Returns:
        The expression AST (positions point into ``file``).

    Raises:
        ContractSyntaxError: The text does not parse, nests deeper than ``MAX_DEPTH`` or is
            longer than ``MAX_EXPR_CHARS``.
    """
    check_length(text, file=file, line=line, col=col, newlines=False)
    parser = ExprParser(
        tokenize(text, file=file, line=line, col=col, newlines=False), file, "end of expression"
    )
    expr = parser.expression()
    parser.expect_end()
    return expr


def parse_clauses(
    text: str, *, file: str = "<string>", line: int = 1, indent: int = 0
) -> tuple[Clause, ...]:
    """Parse a block of Legal-Blocks clauses, one per logical line.

    Unlabelled clauses get ``clause_<n>`` (n = 1-based clause index); INVARIANT penalty and
    severity default to 1.0 and are stored filled in.

    Args:
        text: Clause block source.
        file: File name reported in errors and positions.
        line: Line of ``text``'s first line in ``file``.
        indent: Columns to add to every column (indentation of a YAML block scalar).

    Returns:
        The clauses in source order.

    Raises:
        ContractSyntaxError: A clause does not parse, labels collide, or a limit is exceeded.
    """
    if len(text) > MAX_SOURCE_CHARS:
        head = text[:MAX_SOURCE_CHARS]
        err_line = line + head.count("\n")
        err_col = MAX_SOURCE_CHARS - (head.rfind("\n") + 1) + 1 + indent
        raise ContractSyntaxError(
            f"clause block is longer than {MAX_SOURCE_CHARS} characters", file, err_line, err_col
        )
    check_length(text, file=file, line=line, indent=indent, newlines=True)
    tokens = tokenize(text, file=file, line=line, indent=indent, newlines=True)
    parser = _ClauseParser(tokens, file, "end of line")
    parsed: list[tuple[Token | None, Clause]] = []
    while parser.tok.kind != "EOF":
        if parser.tok.kind == "NL":
            parser.advance()
            continue
        parsed.append(parser.clause())
    return _assign_labels(parsed, file)


def _assign_labels(parsed: list[tuple[Token | None, Clause]], file: str) -> tuple[Clause, ...]:
    explicit: dict[str, Token] = {}
    for label_tok, _ in parsed:
        if label_tok is None:
            continue
        first = explicit.get(label_tok.text)
        if first is not None:
            raise ContractSyntaxError(
                f"duplicate clause label '{label_tok.text}' (first used at {first.line}:"
                f"{first.col}); labels must be unique",
                file,
                label_tok.line,
                label_tok.col,
                label_tok.source_line,
            )
        explicit[label_tok.text] = label_tok
    out = []
    for index, (label_tok, clause) in enumerate(parsed, start=1):
        if label_tok is None:
            label = f"clause_{index}"
            other = explicit.get(label)
            if other is not None:
                raise ContractSyntaxError(
                    f"this clause would be labelled '{label}', which the clause at {other.line}:"
                    f"{other.col} uses explicitly; give this clause a label",
                    file,
                    clause.pos.line,
                    clause.pos.col,
                    clause.pos.source_line,
                )
            clause = Clause(
                label,
                clause.kind,
                clause.expr,
                clause.penalty,
                clause.severity,
                clause.var,
                pos=clause.pos,
            )
        out.append(clause)
    return tuple(out)
