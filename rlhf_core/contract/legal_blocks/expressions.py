"""Precedence-climbing parser for Legal-Blocks expressions (docs/contracts.md#operators).

The grammar, loosest first: IMPLIES (right-assoc), OR, AND, NOT, chained comparisons, ``+ -``,
``* /``, unary ``-``, ``^`` (right-assoc, right operand unary), atoms. Precedence climbing
follows it exactly while using two Python frames per nesting level; syntactic nesting and AST
depth are both bounded by ``MAX_DEPTH`` so hostile input fails fast with a
``ContractSyntaxError``. Nothing is ever evaluated: names are only recorded, and calls are only
accepted for registered functions.
"""

from __future__ import annotations

from collections.abc import Iterator

from rlhf_core.contract.legal_blocks.ast import (
    Attr,
    Binary,
    Bool,
    Call,
    Compare,
    Expr,
    IfElse,
    Name,
    Normalize,
    Num,
    Pos,
    Unary,
)
from rlhf_core.contract.legal_blocks.functions import FUNCTIONS, GROUPS, NORMALIZERS, callable_names
from rlhf_core.contract.legal_blocks.lexer import KEYWORDS, Token
from rlhf_core.contract.legal_blocks.limits import MAX_DEPTH
from rlhf_core.contract.legal_blocks.walk import find_too_deep
from rlhf_core.errors import ContractSyntaxError

_COMPARE_OPS = frozenset({"<", "<=", ">", ">=", "==", "!="})
_INFIX_BP = {"IMPLIES": 1, "OR": 2, "AND": 3, "+": 6, "-": 6, "*": 7, "/": 7, "^": 9}
_INFIX_BP.update(dict.fromkeys(_COMPARE_OPS, 5))
_NOT_BP = 4
_COMPARE_OPERAND_BP = 6
_UNARY_BP = 8


class ExprParser:
    """Precedence-climbing expression parser over a lazy token stream (shared by clause parsing)."""

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
                ops: list[str] = []
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
        if name.text in NORMALIZERS:
            return self._normalize(name)
        if name.text not in FUNCTIONS:
            known = ", ".join(callable_names())
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

    def _normalize(self, name: Token) -> Expr:
        """``zscore(expr IN prompt)``: one expression, ``IN``, a group name, ``)``."""
        self.advance()
        fn = name.text
        if self.tok.kind == ")":
            raise self.error(f"{fn}() needs an argument and a group: {fn}(x IN prompt) or"
                             f" {fn}(x IN run)")
        arg = self._expr(1)
        if self.tok.kind != "IN":
            extra = " (it takes one expression)" if self.tok.kind == "," else ""
            raise self.error(
                f"expected 'IN prompt' or 'IN run' after the argument of {fn}(){extra},"
                f" found {self.describe(self.tok)}"
            )
        self.advance()
        group = self.tok
        if group.kind != "NAME" or group.text not in GROUPS:
            raise self.error(
                f"unknown group {self.describe(group)} in {fn}(... IN ...); a normalisation ranges"
                " over 'prompt' (the prompt's candidates) or 'run' (every row of the run)"
            )
        self.advance()
        if self.tok.kind != ")":
            raise self.error(
                f"expected ')' to close '{fn}(' opened at {name.line}:{name.col},"
                f" found {self.describe(self.tok)}"
            )
        self.advance()
        return Normalize(fn, arg, group.text, pos=self.pos(name))  # type: ignore[arg-type]

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
