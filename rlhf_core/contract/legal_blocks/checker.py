"""Legal-Blocks type checker.

Types are ``"bool"``, ``"number"`` and ``"str"``. Names resolve only to declared inputs,
``reward`` (inside ENSURES) and, inside ``FORALL/EXISTS r IN prompt``, to ``r.<column>``.
``str`` columns may only appear as the argument of ``len()``. Every error is a
``ContractTypeError`` pointing at the offending node, with its source line for the caret.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    Normalize,
    Num,
    Pos,
    Unary,
)
from rlhf_core.contract.legal_blocks.functions import FUNCTIONS, GROUPS, NORMALIZERS, callable_names
from rlhf_core.contract.legal_blocks.lexer import KEYWORDS
from rlhf_core.contract.legal_blocks.limits import MAX_DEPTH
from rlhf_core.contract.legal_blocks.walk import find_too_deep, walk
from rlhf_core.errors import ContractTypeError

if TYPE_CHECKING:  # program imports the AST package; only annotations need InputDecl here
    from rlhf_core.contract.program import InputDecl

_DTYPE_TO_TYPE = {"float": "number", "int": "number", "bool": "bool", "str": "str"}
_ARITH = frozenset({"+", "-", "*", "/", "^"})
_LOGIC = frozenset({"AND", "OR", "IMPLIES"})
_ORDER = frozenset({"<", "<=", ">", ">="})
_EQUALITY = frozenset({"==", "!="})
_QUANTIFIERS = ("FORALL", "EXISTS")


def _error(message: str, pos: Pos) -> ContractTypeError:
    return ContractTypeError(message, pos.file, pos.line, pos.col, pos.source_line)


@dataclass(frozen=True)
class TypeEnv:
    """What names mean while checking one expression.

    Attributes:
        inputs: Declared input name -> type (``bool`` / ``number`` / ``str``).
        allow_reward: ``reward`` (a number) is in scope (ENSURES only).
        quantifier: ``(kind, var)`` of the enclosing FORALL / EXISTS, or None.
    """

    inputs: dict[str, str] = field(default_factory=dict)
    allow_reward: bool = False
    quantifier: tuple[str, str] | None = None

    @classmethod
    def from_inputs(
        cls,
        inputs: tuple[InputDecl, ...],
        *,
        allow_reward: bool = False,
        quantifier: tuple[str, str] | None = None,
    ) -> TypeEnv:
        """Build the environment from the contract's input declarations.

        Raises:
            ContractTypeError: An input has an unknown dtype or a reserved name.
        """
        types: dict[str, str] = {}
        for decl in inputs:
            if decl.dtype not in _DTYPE_TO_TYPE:
                raise ContractTypeError(f"input '{decl.name}' has unknown dtype '{decl.dtype}'")
            if decl.name in KEYWORDS or decl.name in ("reward", "true", "false"):
                raise ContractTypeError(
                    f"input name '{decl.name}' is reserved in Legal-Blocks; rename the column"
                )
            types[decl.name] = _DTYPE_TO_TYPE[decl.dtype]
        return cls(types, allow_reward, quantifier)

    def declared(self) -> str:
        """Comma-separated declared input names (for messages)."""
        return ", ".join(self.inputs) if self.inputs else "(none)"


def _describe(expr: Expr) -> str:
    if isinstance(expr, Name):
        return f"'{expr.id}'"
    if isinstance(expr, Attr):
        return f"'{expr.var}.{expr.column}'"
    return ""


class _Checker:
    def __init__(self, env: TypeEnv) -> None:
        self.env = env

    def value(self, expr: Expr, want: str | None, context: str) -> str:
        """Check ``expr`` used as an operand; ``want`` is the required type, if any."""
        ty = self.check(expr)
        if ty == "str":
            raise _error(
                f"{_describe(expr) or 'this'} is a str column; str values may only be used as"
                " len(...)",
                expr.pos,
            )
        if want is not None and ty != want:
            what = f"{ty} {_describe(expr)}".rstrip()
            raise _error(f"{context} needs a {want}, found {what}", expr.pos)
        return ty

    def check(self, expr: Expr) -> str:
        if isinstance(expr, Num):
            if not math.isfinite(expr.value):
                raise _error("number literals must be finite", expr.pos)
            return "number"
        if isinstance(expr, Bool):
            return "bool"
        if isinstance(expr, Name):
            return self._name(expr)
        if isinstance(expr, Attr):
            return self._attr(expr)
        if isinstance(expr, Unary):
            if expr.op not in ("-", "NOT"):
                raise _error(f"unknown unary operator {expr.op!r}", expr.pos)
            want = "number" if expr.op == "-" else "bool"
            self.value(expr.operand, want, f"'{expr.op}'")
            return want
        if isinstance(expr, Binary):
            if expr.op not in _ARITH and expr.op not in _LOGIC:
                raise _error(f"unknown binary operator {expr.op!r}", expr.pos)
            want = "number" if expr.op in _ARITH else "bool"
            self.value(expr.left, want, f"'{expr.op}'")
            self.value(expr.right, want, f"'{expr.op}'")
            return want
        if isinstance(expr, Compare):
            return self._compare(expr)
        if isinstance(expr, Call):
            return self._call(expr)
        if isinstance(expr, IfElse):
            self.value(expr.cond, "bool", "the IF condition")
            then = self.value(expr.then, None, "THEN")
            self.value(expr.orelse, then, f"ELSE (THEN is a {then})")
            return then
        if isinstance(expr, Normalize):
            return self._normalize(expr)
        raise TypeError(f"not a Legal-Blocks expression node: {type(expr).__name__}")

    def _name(self, expr: Name) -> str:
        name = expr.id
        quant = self.env.quantifier
        if name == "reward":
            if not self.env.allow_reward:
                raise _error("'reward' may only be used inside ENSURES clauses", expr.pos)
            return "number"
        if quant is not None and name == quant[1]:
            raise _error(
                f"'{name}' is a candidate of {quant[0]} {name} IN prompt; use {name}.<column>",
                expr.pos,
            )
        if name in self.env.inputs:
            if quant is not None:
                raise _error(
                    f"inside {quant[0]} {quant[1]} IN prompt use {quant[1]}.<column>:"
                    f" write {quant[1]}.{name}",
                    expr.pos,
                )
            return self.env.inputs[name]
        if name in FUNCTIONS:
            raise _error(f"function '{name}' must be called: {name}(...)", expr.pos)
        if name in NORMALIZERS:
            raise _error(f"'{name}' must be called: {name}(x IN prompt) or {name}(x IN run)",
                         expr.pos)
        hint = f" (keywords are upper-case: {name.upper()})" if name.upper() in KEYWORDS else ""
        raise _error(
            f"unknown name '{name}'{hint}; declared inputs: {self.env.declared()}", expr.pos
        )

    def _attr(self, expr: Attr) -> str:
        quant = self.env.quantifier
        if quant is None or expr.var != quant[1]:
            bound = f"; here only {quant[1]}.<column> is bound" if quant is not None else ""
            raise _error(
                f"'{expr.var}.{expr.column}': attribute access is only allowed on the variable of"
                f" the enclosing FORALL/EXISTS (r.<column> inside FORALL r IN prompt){bound}",
                expr.pos,
            )
        if expr.column not in self.env.inputs:
            raise _error(
                f"unknown column '{expr.column}' in {expr.var}.{expr.column};"
                f" declared inputs: {self.env.declared()}",
                expr.pos,
            )
        return self.env.inputs[expr.column]

    def _compare(self, expr: Compare) -> str:
        if len(expr.operands) != len(expr.ops) + 1 or not expr.ops:
            raise _error("malformed comparison (n operators need n + 1 operands)", expr.pos)
        left = expr.operands[0]
        left_ty = self.value(left, None, "comparison")
        for op, right in zip(expr.ops, expr.operands[1:], strict=True):
            if op not in _ORDER and op not in _EQUALITY:
                raise _error(f"unknown comparison operator {op!r}", expr.pos)
            if op in _ORDER:
                self.value(left, "number", f"'{op}'")
                self.value(right, "number", f"'{op}'")
                right_ty = "number"
            else:
                right_ty = self.value(right, left_ty, f"'{op}' with a {left_ty} on its left")
            left, left_ty = right, right_ty
        return "bool"

    def _call(self, expr: Call) -> str:
        sig = FUNCTIONS.get(expr.fn)
        if sig is None:
            if expr.fn in NORMALIZERS:
                raise _error(
                    f"{expr.fn}() takes one expression and a group: {expr.fn}(x IN prompt)",
                    expr.pos,
                )
            known = ", ".join(callable_names())
            raise _error(f"unknown function '{expr.fn}'; available: {known}", expr.pos)
        n = len(expr.args)
        if n < sig.min_arity or (sig.max_arity is not None and n > sig.max_arity):
            raise _error(
                f"{expr.fn}() takes {sig.arity_text()} argument"
                f"{'' if sig.arity_text() == '1' else 's'}, got {n}",
                expr.pos,
            )
        for arg in expr.args:
            if sig.arg_type == "str":
                ty = self.check(arg)
                if ty != "str":
                    raise _error(f"{expr.fn}() needs a str column, found {ty}", arg.pos)
            else:
                self.value(arg, sig.arg_type, f"{expr.fn}()")
        return sig.return_type

    def _normalize(self, expr: Normalize) -> str:
        """``fn(arg IN group)``: a number argument reading only the row's inputs."""
        where = f"{expr.fn}(... IN {expr.group})"
        if expr.fn not in NORMALIZERS:
            raise _error(f"unknown normalisation '{expr.fn}'; use one of {', '.join(NORMALIZERS)}",
                         expr.pos)
        if expr.group not in GROUPS:
            raise _error(
                f"unknown group '{expr.group}' in {expr.fn}(... IN {expr.group}); use"
                " 'prompt' (the prompt's candidates) or 'run' (every row of the run)",
                expr.pos,
            )
        quant = self.env.quantifier
        if quant is not None:
            raise _error(
                f"{where} is not allowed inside {quant[0]} {quant[1]} IN prompt: a quantifier"
                f" body reads one candidate; write the normalisation in a REQUIRES or INVARIANT"
                " clause or a utility",
                expr.pos,
            )
        for node in walk(expr.arg):
            if isinstance(node, Normalize):
                raise _error(
                    f"{node.fn}(... IN {node.group}) is nested inside {where}; normalisations"
                    " cannot be nested (normalise the raw signal once)",
                    node.pos,
                )
            if isinstance(node, Name) and node.id == "reward":
                raise _error(
                    f"'reward' cannot be normalised: the argument of {where} may only read the"
                    " row's inputs",
                    node.pos,
                )
        ty = self.check(expr.arg)
        if ty != "number":
            found = f"{ty} {_describe(expr.arg)}".rstrip()
            hint = (f"; str values may only be used as len(...): {expr.fn}(len(...) IN"
                    f" {expr.group})") if ty == "str" else ""
            raise _error(f"{expr.fn}() needs a number, found {found}{hint}", expr.arg.pos)
        return "number"


def _check_depth(expr: Expr) -> None:
    deep = find_too_deep(expr, MAX_DEPTH)
    if deep is not None:
        raise _error(f"expression nests deeper than {MAX_DEPTH} levels", deep.pos)


def check_expr(
    expr: Expr,
    inputs: tuple[InputDecl, ...],
    *,
    allow_reward: bool = False,
    expect: str | None = None,
) -> str:
    """Type-check an expression against the declared inputs.

    Args:
        expr: Parsed expression.
        inputs: The contract's input declarations.
        allow_reward: ``reward`` is in scope (ENSURES bodies).
        expect: Required result type (``"number"`` for utilities, ``"bool"`` for clauses).

    Returns:
        The expression's type: ``"bool"``, ``"number"`` (or ``"str"`` for a bare str column).

    Raises:
        ContractTypeError: The expression is ill-typed or names something undeclared.
    """
    _check_depth(expr)
    ty = _Checker(TypeEnv.from_inputs(inputs, allow_reward=allow_reward)).check(expr)
    if expect is not None and ty != expect:
        raise _error(f"expected a {expect} expression, found {ty}", expr.pos)
    return ty


def check_clause(clause: Clause, inputs: tuple[InputDecl, ...]) -> None:
    """Type-check one clause (body must be bool; options must fit the clause kind).

    Raises:
        ContractTypeError: The clause is ill-typed.
    """
    kind = clause.kind
    if kind in _QUANTIFIERS:
        var = clause.var
        if var is None:
            raise _error(f"{kind} clause '{clause.label}' has no variable", clause.pos)
        declared = {decl.name for decl in inputs}
        if var in declared or var == "reward" or var in FUNCTIONS or var in NORMALIZERS:
            raise _error(
                f"quantifier variable '{var}' shadows {'a declared input' if var in declared else 'a reserved name'};"
                " pick another name",
                clause.pos,
            )
        env = TypeEnv.from_inputs(inputs, quantifier=(kind, var))
    elif kind in ("REQUIRES", "INVARIANT", "ENSURES"):
        if clause.var is not None:
            raise _error(f"{kind} clause '{clause.label}' cannot bind a variable", clause.pos)
        env = TypeEnv.from_inputs(inputs, allow_reward=kind == "ENSURES")
    else:
        raise _error(f"unknown clause kind '{kind}'", clause.pos)
    _check_options(clause)
    _check_depth(clause.expr)
    ty = _Checker(env).value(clause.expr, None, f"{kind} clause")
    if ty != "bool":
        raise _error(
            f"the body of {kind} clause '{clause.label}' must be bool, found {ty}", clause.expr.pos
        )


def _check_options(clause: Clause) -> None:
    if clause.kind != "INVARIANT":
        if clause.penalty is not None or clause.severity is not None:
            raise _error(
                f"PENALTY/SEVERITY apply only to INVARIANT clauses, not {clause.kind}", clause.pos
            )
        return
    for word, value in (("PENALTY", clause.penalty), ("SEVERITY", clause.severity)):
        if value is None or not math.isfinite(value) or value < 0:
            raise _error(
                f"{word} of '{clause.label}' must be a finite number >= 0, got {value}", clause.pos
            )


def check_clauses(clauses: tuple[Clause, ...], inputs: tuple[InputDecl, ...]) -> None:
    """Type-check a clause block: each clause, plus label uniqueness.

    Raises:
        ContractTypeError: A clause is ill-typed or two clauses share a label.
    """
    seen: dict[str, Clause] = {}
    for clause in clauses:
        first = seen.get(clause.label)
        if first is not None:
            raise _error(
                f"duplicate clause label '{clause.label}' (first used at {first.pos.line}:"
                f"{first.pos.col})",
                clause.pos,
            )
        seen[clause.label] = clause
        check_clause(clause, inputs)
