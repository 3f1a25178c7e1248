"""Legal-Blocks expressions as DuckDB SQL text (FLOAT numbers, BOOLEAN bools).

Semantics follow ``lower_array`` (IEEE float32). DuckDB computes FLOAT ``+ - * /`` in single
precision; transcendental functions are computed in DOUBLE and rounded to FLOAT. DuckDB orders
NaN above every number and treats NaN = NaN, so wherever interval analysis says an operand may
be NaN, comparisons are guarded to IEEE semantics; ``min`` is written ``-greatest(-a, -b)``
(``greatest`` propagates NaN); DOUBLE -> FLOAT casts that may overflow are scaled so they give
±inf instead of an error. Guards repeat operand text, so the result size is capped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rlhf_core.contract import intervals as iv
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
    Unary,
)
from rlhf_core.errors import ContractError, ContractTypeError

_FLT_MAX = 3.4028234663852886e38
_SCALE = repr(2.0**896)
MAX_SQL_CHARS = 1_000_000


def quote_ident(name: str) -> str:
    """Double-quote an SQL identifier (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def sql_float(value: float) -> str:
    """A float32 literal whose value is ``float32(value)``, exactly as numpy rounds it."""
    value = float(value)
    if math.isnan(value):
        return "CAST('nan' AS FLOAT)"
    if math.isinf(value):
        return f"CAST('{'inf' if value > 0 else '-inf'}' AS FLOAT)"
    text = repr(value)
    if "e" not in text:
        text += "e0"
    return f"CAST({text} AS FLOAT)"


class SqlLowering:
    """Expression -> SQL text over the staged column names, with NaN / overflow guards."""

    def __init__(
        self,
        names: dict[str, str],
        env: dict[str, iv.Interval],
        norms: dict[Normalize, str] | None = None,
    ) -> None:
        self.names = names
        self.env = env
        self.norms = norms or {}

    def _iv(self, e: Expr) -> iv.Interval:
        return iv.interval_of(e, self.env, rounding=True)

    def _to_float(self, sql: str, result: iv.Interval) -> str:
        if result.hi > _FLT_MAX or result.lo < -_FLT_MAX:
            # DuckDB refuses DOUBLE -> FLOAT casts of finite values above FLT_MAX; scaling by
            # 2**896 and back is exact below 2**128 and overflows to ±inf above it, without
            # repeating ``sql``.
            return f"CAST((({sql}) * {_SCALE}) / {_SCALE} AS FLOAT)"
        return f"CAST({sql} AS FLOAT)"

    def expr(self, e: Expr) -> str:
        """SQL text of ``e`` (FLOAT for numbers, BOOLEAN for bools).

        Raises:
            ContractError: The SQL text grows beyond ``MAX_SQL_CHARS`` (NaN guards repeat
                operands, so deeply nested NaN-prone comparisons grow quickly).
        """
        text = self._expr(e)
        if len(text) > MAX_SQL_CHARS:
            pos = e.pos
            raise ContractError(
                f"{pos.file}:{pos.line}:{pos.col}: expression too complex for SQL compilation "
                f"(over {MAX_SQL_CHARS:,} characters); simplify it or split it into clauses"
            )
        return text

    def _expr(self, e: Expr) -> str:
        if isinstance(e, Num):
            return sql_float(e.value)
        if isinstance(e, Bool):
            return "TRUE" if e.value else "FALSE"
        if isinstance(e, Name | Attr):
            key = e.id if isinstance(e, Name) else e.column
            if key not in self.names:
                pos = e.pos
                raise ContractTypeError(f"unknown name {key!r}", pos.file, pos.line, pos.col)
            return self.names[key]
        if isinstance(e, Unary):
            inner = self.expr(e.operand)
            return f"(-({inner}))" if e.op == "-" else f"(NOT ({inner}))"
        if isinstance(e, Binary):
            a, b = self.expr(e.left), self.expr(e.right)
            if e.op in ("+", "-", "*", "/"):
                return f"(({a}) {e.op} ({b}))"
            if e.op == "^":
                raw = f"pow(CAST({a} AS DOUBLE), CAST({b} AS DOUBLE))"
                return self._to_float(raw, self._iv(e))
            if e.op == "IMPLIES":
                return f"((NOT ({a})) OR ({b}))"
            return f"(({a}) {e.op} ({b}))"
        if isinstance(e, Compare):
            parts = []
            for op, x, y in zip(e.ops, e.operands, e.operands[1:], strict=False):
                parts.append(self._compare(op, x, y))
            return "(" + " AND ".join(parts) + ")"
        if isinstance(e, Call):
            return self._call(e)
        if isinstance(e, IfElse):
            return (
                f"(CASE WHEN {self.expr(e.cond)} THEN {self.expr(e.then)} "
                f"ELSE {self.expr(e.orelse)} END)"
            )
        if isinstance(e, Normalize):
            # Computed by window functions in an earlier stage (compile_sql); never NaN.
            if e not in self.norms:
                pos = e.pos
                raise ContractTypeError(f"{e.fn}(... IN {e.group}) has no SQL column here",
                                        pos.file, pos.line, pos.col)
            return self.norms[e]
        raise TypeError(f"not a Legal-Blocks expression node: {type(e).__name__}")

    def _compare(self, op: str, x: Expr, y: Expr) -> str:
        a, b = self.expr(x), self.expr(y)
        sql_op = "<>" if op == "!=" else "=" if op == "==" else op
        plain = f"(({a}) {sql_op} ({b}))"
        nan_sides = [s for s, e in ((a, x), (b, y)) if self._iv(e).nan]
        if not nan_sides:
            return plain
        any_nan = " OR ".join(f"isnan({s})" for s in nan_sides)
        if op == "!=":
            return f"(({any_nan}) OR {plain})"
        return f"((NOT ({any_nan})) AND {plain})"

    def _minmax(self, fn: str, args: Sequence[Expr]) -> str:
        texts = [self.expr(a) for a in args]
        if not any(self._iv(a).nan for a in args):
            return f"{fn}({', '.join(texts)})"
        # DuckDB orders NaN above every number, so greatest() propagates NaN like jnp.maximum;
        # min(a, b) = -greatest(-a, -b) does the same for least().
        if fn == "greatest":
            return f"greatest({', '.join(texts)})"
        return f"(-greatest({', '.join(f'(-({t}))' for t in texts)}))"

    def _call(self, e: Call) -> str:
        if e.fn == "len":
            arg = e.args[0]
            column = arg.column if isinstance(arg, Attr) else getattr(arg, "id", "")
            return self.names[f"{column}__len"]
        if e.fn in ("min", "max"):
            return self._minmax("least" if e.fn == "min" else "greatest", e.args)
        if e.fn == "clip":
            inner = Call("max", (e.args[0], e.args[1]), e.pos)
            return self._minmax("least", (inner, e.args[2]))
        x = self.expr(e.args[0])
        if e.fn in ("abs", "floor", "ceil"):
            return f"{e.fn}({x})"
        dbl = f"CAST({x} AS DOUBLE)"
        double_sql = {
            "log": f"ln({dbl})",
            "exp": f"exp({dbl})",
            "sqrt": f"sqrt({dbl})",
            "tanh": f"tanh({dbl})",
            "sigmoid": f"(1.0 / (1.0 + exp(-({dbl}))))",
        }
        if e.fn not in double_sql:
            pos = e.pos
            raise ContractTypeError(f"function {e.fn!r} has no SQL lowering", pos.file, pos.line,
                                    pos.col)
        return self._to_float(double_sql[e.fn], self._iv(e))
