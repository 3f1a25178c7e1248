"""Legal-Blocks parser: text -> AST with source positions (DESIGN §4).

Expressions are parsed by precedence climbing, which follows the grammar of DESIGN §4 exactly
(loosest first: IMPLIES (right-assoc), OR, AND, NOT, chained comparisons, ``+ -``, ``* /``,
unary ``-``, ``^`` (right-assoc, right operand unary), atoms) while using two Python frames per
nesting level. Syntactic nesting and AST depth are both bounded by ``MAX_DEPTH`` and text length
by ``MAX_EXPR_CHARS``, so hostile input fails fast with a ``ContractSyntaxError``. Nothing is
ever evaluated: names are only recorded, calls are only accepted for registered functions.
"""

from __future__ import annotations

from collections.abc import Iterator

from rlhf_core.contract.legal_blocks.ast import (
    Attr,
    Binary,
    Bool,
    Call,
    Clause,
    Compare,
    Expr,
    IfElse,
    Name,
    Num,
    Pos,
    Unary,
)
from rlhf_core.contract.legal_blocks.functions import FUNCTIONS
from rlhf_core.contract.legal_blocks.lexer import KEYWORDS, Token, tokenize
from rlhf_core.contract.legal_blocks.limits import MAX_DEPTH, MAX_SOURCE_CHARS
from rlhf_core.contract.legal_blocks.walk import find_too_deep
from rlhf_core.errors import ContractSyntaxError

_COMPARE_OPS = frozenset({"<", "<=", ">", ">=", "==", "!="})
_INFIX_BP = {"IMPLIES": 1, "OR": 2, "AND": 3, "+": 6, "-": 6, "*": 7, "/": 7, "^": 9}
_INFIX_BP.update(dict.fromkeys(_COMPARE_OPS, 5))
_NOT_BP = 4
_COMPARE_OPERAND_BP = 6
_UNARY_BP = 8
_CLAUSE_KINDS = ("REQUIRES", "INVARIANT", "ENSURES", "FORALL", "EXISTS")


class _Parser:
    """Precedence-climbing parser over a lazy token stream."""

    def __init__(self, tokens: Iterator[Token], file: str, end_text: str) -> None:
        self._tokens = tokens
        self._file = file
        self._end_text = end_text
        self._buffer: Token | None = None
        self._depth = 0
        self.prev: Token | None = None
        self.tok = next(tokens)

    # -- token helpers -------------------------------------------------------------------
    def advance(self) -> Token:
        tok = self.tok
        self.prev = tok
        if self._buffer is not None:
            self.tok, self._buffer = self._buffer, None
        else:
            self.tok = next(self._tokens)
        return tok

    def peek(self) -> Token:
        if self._buffer is None:
            self._buffer = next(self._tokens)
        return self._buffer

    def pos(self, tok: Token) -> Pos:
        return Pos(self._file, tok.line, tok.col, tok.source_line)

    def describe(self, tok: Token) -> str:
        if tok.kind in ("NL", "EOF"):
            return self._end_text
        if tok.kind == "NUM":
            return f"number {tok.text}"
        text = f"'{tok.text}'"
        if tok.kind == "NAME" and tok.text.upper() in KEYWORDS:
            text += f" (keywords are upper-case: {tok.text.upper()})"
        return text

    def error(self, message: str, tok: Token | None = None) -> ContractSyntaxError:
        tok = self.tok if tok is None else tok
        return ContractSyntaxError(message, self._file, tok.line, tok.col, tok.source_line)

    def expect(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(f"expected {what}, found {self.describe(self.tok)}")
        return self.advance()

    # -- expressions ---------------------------------------------------------------------
    def expression(self) -> Expr:
        """A full expression, checked against the AST depth limit."""
        expr = self._expr(1)
        deep = find_too_deep(expr, MAX_DEPTH)
        if deep is not None:
            raise ContractSyntaxError(
                f"expression nests deeper than {MAX_DEPTH} levels (each operator of a chain"
                " counts); split it or use min/max",
                deep.pos.file,
                deep.pos.line,
                deep.pos.col,
                deep.pos.source_line,
            )
        return expr

    def _expr(self, min_bp: int) -> Expr:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self.error(f"expression nests deeper than {MAX_DEPTH} levels; simplify it")
        left = self._prefix(min_bp)
        while True:
            tok = self.tok
            bp = _INFIX_BP.get(tok.kind)
            if bp is None or bp < min_bp:
                break
            if tok.kind in _COMPARE_OPS:
                ops: list = []
                operands = [left]
                while self.tok.kind in _COMPARE_OPS:
                    ops.append(self.advance().kind)
                    operands.append(self._expr(_COMPARE_OPERAND_BP))
                left = Compare(tuple(ops), tuple(operands), pos=self.pos(tok))
                continue
            self.advance()
            if tok.kind == "^":
                right = self._expr(_UNARY_BP)
            elif tok.kind == "IMPLIES":
                right = self._expr(bp)
            else:
                right = self._expr(bp + 1)
            left = Binary(tok.kind, left, right, pos=self.pos(tok))  # type: ignore[arg-type]
        self._depth -= 1
        return left

    def _prefix(self, min_bp: int) -> Expr:
        tok = self.tok
        kind = tok.kind
        if kind == "-":
            self.advance()
            return Unary("-", self._expr(_UNARY_BP), pos=self.pos(tok))
        if kind == "NOT":
            if min_bp > _NOT_BP:
                raise self.error("NOT cannot appear here; wrap it in parentheses: (NOT x)")
            self.advance()
            return Unary("NOT", self._expr(_NOT_BP), pos=self.pos(tok))
        if kind == "NUM":
            self.advance()
            is_int = not any(c in tok.text for c in ".eE")
            return Num(float(tok.text), is_int, pos=self.pos(tok))
        if kind == "BOOL":
            self.advance()
            return Bool(tok.text == "true", pos=self.pos(tok))
        if kind == "NAME":
            return self._name()
        if kind == "(":
            self.advance()
            inner = self._expr(1)
            if self.tok.kind != ")":
                raise self.error(
                    f"expected ')' to close '(' opened at {tok.line}:{tok.col},"
                    f" found {self.describe(self.tok)}"
                )
            self.advance()
            return inner
        if kind == "IF":
            return self._if()
        after = f" after {self.describe(self.prev)}" if self.prev is not None else ""
        raise self.error(f"expected an expression{after}, found {self.describe(tok)}")

    def _name(self) -> Expr:
        tok = self.advance()
        if self.tok.kind == "(":
            return self._call(tok)
        if self.tok.kind == ".":
            self.advance()
            column = self.expect("NAME", f"a column name after '{tok.text}.'")
            return Attr(tok.text, column.text, pos=self.pos(tok))
        return Name(tok.text, pos=self.pos(tok))

    def _call(self, name: Token) -> Expr:
        if name.text not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.error(f"unknown function '{name.text}'; available: {known}", name)
        self.advance()
        args: list[Expr] = []
        if self.tok.kind != ")":
            args.append(self._expr(1))
            while self.tok.kind == ",":
                self.advance()
                args.append(self._expr(1))
        if self.tok.kind != ")":
            raise self.error(
                f"expected ',' or ')' to close '{name.text}(' opened at {name.line}:{name.col},"
                f" found {self.describe(self.tok)}"
            )
        self.advance()
        return Call(name.text, tuple(args), pos=self.pos(name))

    def _if(self) -> Expr:
        tok = self.advance()
        cond = self._expr(1)
        where = f"(IF at {tok.line}:{tok.col})"
        self.expect("THEN", f"THEN after the IF condition {where}")
        then = self._expr(1)
        self.expect("ELSE", f"ELSE after the THEN branch {where}")
        orelse = self._expr(1)
        return IfElse(cond, then, orelse, pos=self.pos(tok))

    def expect_end(self) -> None:
        tok = self.tok
        if tok.kind in ("NL", "EOF"):
            return
        if tok.kind == ")":
            raise self.error("unmatched ')' with no '(' before it")
        raise self.error(f"expected an operator or {self._end_text}, found {self.describe(tok)}")

    # -- clauses -------------------------------------------------------------------------
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
    parser = _Parser(
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
    tokens = tokenize(text, file=file, line=line, indent=indent, newlines=True)
    parser = _Parser(tokens, file, "end of line")
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
