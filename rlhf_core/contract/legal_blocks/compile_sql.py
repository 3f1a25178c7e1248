"""Compile a checked ContractProgram into DuckDB SQL with the same outputs as the JAX program.

``compile_sql(program).select(relation, id_columns)`` is one SELECT producing ``reward``,
``u_<stakeholder>``, ``v_<clause label>``, ``veto``, ``penalty``, ``outside_bargaining_set`` and
``ensures_ok`` (semantics in ``lower_array``). Safety: identifiers are quoted and come only from
the program (declared inputs, stakeholder names, clause labels, group column) or the caller's
id-column list; no value is interpolated except numeric literals of the checked AST and the
derived aggregation constants, rendered ``repr``-exact as ``CAST(<double> AS FLOAT)``.

Float handling: inputs are cast to FLOAT (float32) and DuckDB's FLOAT arithmetic is IEEE
single precision, so ``+ - * /`` give the same bits as JAX except where XLA fuses a product
into an FMA; transcendental functions are computed in DOUBLE and rounded to FLOAT (XLA's
float32 versions are within a few ulps). DuckDB orders NaN above every number and treats
NaN = NaN; wherever interval analysis says an operand may be NaN, comparisons and
min is rewritten as ``-greatest(-a, -b)`` (greatest propagates NaN in DuckDB), and DOUBLE->FLOAT
casts that may overflow are scaled so that they give ±inf instead of an error. Quantifiers are ``bool_or`` / ``bool_and`` window functions over the group
column; window queries do not preserve input row order, so pass ``order_by``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from rlhf_core.contract import intervals as iv
from rlhf_core.contract.aggregation import AggregationParams
from rlhf_core.contract.bounds import aggregation_params, input_env, reward_bounds
from rlhf_core.contract.legal_blocks.ast import (
    Attr,
    Binary,
    Bool,
    Call,
    Compare,
    Expr,
    IfElse,
    Name,
    Num,
    Unary,
)
from rlhf_core.contract.legal_blocks.compile_jax import has_quantifiers
from rlhf_core.contract.legal_blocks.lower_array import clause_cost
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import ContractError, ContractTypeError, SchemaMismatchError

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


def _in(i: int) -> str:
    return quote_ident(f"__in{i}")


class SqlLowering:
    """Expression -> SQL text over the staged column names, with NaN / overflow guards."""

    def __init__(self, names: dict[str, str], env: dict[str, iv.Interval]) -> None:
        self.names = names
        self.env = env

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


@dataclass(frozen=True)
class SqlProgram:
    """SQL for one contract: the staged SELECT and the output column names."""

    program: ContractProgram
    params: AggregationParams
    stage_inputs: tuple[str, ...]
    stage_clauses: tuple[str, ...]
    stage_utilities: tuple[str, ...]
    stage_rule: tuple[str, ...]
    final_columns: tuple[str, ...]
    output_names: tuple[str, ...]

    def select(
        self, relation: str, id_columns: Sequence[str] = (), order_by: Sequence[str] = ()
    ) -> str:
        """One SELECT over ``relation`` returning ``id_columns`` then the outputs.

        Args:
            relation: Table / view / registered relation name (quoted as one identifier).
            id_columns: Columns passed through unchanged (identifiers, quoted).
            order_by: Columns (among ``id_columns``) to order the result by.

        Raises:
            SchemaMismatchError: An id or order column collides with an output name or is
                not among ``id_columns``.
        """
        clash = [c for c in id_columns if c in self.output_names]
        stray = [c for c in order_by if c not in id_columns]
        if clash or stray:
            raise SchemaMismatchError(
                f"contract {self.program.name!r}: id column {(clash or stray)[0]!r} "
                + ("collides with an output column" if clash else "is not among id_columns")
            )
        ids = [quote_ident(c) for c in id_columns]
        first = ", ".join(ids + list(self.stage_inputs))
        stages = [
            f"__s0 AS (SELECT {first} FROM {quote_ident(relation)})",
            f"__s1 AS (SELECT *, {', '.join(self.stage_utilities + self.stage_clauses)} FROM __s0)",
            f"__s2 AS (SELECT *, {', '.join(self.stage_rule[:-1])} FROM __s1)",
            f"__s3 AS (SELECT *, {self.stage_rule[-1]} FROM __s2)",
        ]
        tail = f" ORDER BY {', '.join(quote_ident(c) for c in order_by)}" if order_by else ""
        return (
            "WITH " + ",\n".join(stages)
            + f"\nSELECT {', '.join(ids + list(self.final_columns))} FROM __s3{tail}"
        )


@functools.lru_cache(maxsize=128)
def compile_sql(program: ContractProgram) -> SqlProgram:
    """Compile ``program`` to DuckDB SQL (cached per program)."""
    params = aggregation_params(program)
    env = input_env(program, rounding=True)
    names: dict[str, str] = {}
    stage_inputs = []
    for i, decl in enumerate(program.inputs):
        col = quote_ident(decl.name)
        if decl.dtype == "str":
            names[f"{decl.name}__len"] = _in(i)
            stage_inputs.append(f"CAST(length({col}) AS FLOAT) AS {_in(i)}")
        else:
            names[decl.name] = _in(i)
            sql_type = "BOOLEAN" if decl.dtype == "bool" else "FLOAT"
            stage_inputs.append(f"CAST({col} AS {sql_type}) AS {_in(i)}")
    if has_quantifiers(program):
        group = quote_ident(program.group_column)
        stage_inputs.append(f"{group} AS {quote_ident('__group')}")
    low = SqlLowering(names, env)
    k = len(program.stakeholders)
    u = [quote_ident(f"__u{i}") for i in range(k)]
    stage_utilities = tuple(
        f"{low.expr(s.utility)} AS {u[i]}" for i, s in enumerate(program.stakeholders)
    )
    holds = [quote_ident(f"__h{j}") for j in range(len(program.clauses))]
    stage_clauses, penalty_terms, veto_terms = [], [], []
    for j, c in enumerate(program.clauses):
        if c.kind == "ENSURES":
            continue
        body = low.expr(c.expr)
        if c.kind in ("FORALL", "EXISTS"):
            agg = "bool_or" if c.kind == "EXISTS" else "bool_and"
            body = f"{agg}({body}) OVER (PARTITION BY {quote_ident('__group')})"
        stage_clauses.append(f"{body} AS {holds[j]}")
        if c.kind == "INVARIANT":
            penalty_terms.append(
                f"(CASE WHEN {holds[j]} THEN {sql_float(0.0)} ELSE {sql_float(clause_cost(c))} END)"
            )
        else:
            veto_terms.append(f"(NOT {holds[j]})")
    base, outside = _rule_sql(params, u)
    penalty = sql_float(0.0)
    for term in penalty_terms:
        penalty = f"({penalty} + {term})"
    veto = " OR ".join(veto_terms) if veto_terms else "FALSE"
    stage_rule = (
        f"{base} AS {quote_ident('__base')}",
        f"{outside} AS {quote_ident('__out')}",
        f"{penalty} AS {quote_ident('__pen')}",
        f"({veto}) AS {quote_ident('__veto')}",
        f"CASE WHEN {quote_ident('__veto')} OR {quote_ident('__out')} THEN "
        f"{sql_float(params.floor)} ELSE ({quote_ident('__base')} - {quote_ident('__pen')}) END "
        f"AS {quote_ident('__reward')}",
    )
    ens_env = {**env, "reward": reward_bounds(program, rounding=True)}
    ens_low = SqlLowering({**names, "reward": quote_ident("__reward")}, ens_env)
    final, out_names, ensures = [f"{quote_ident('__reward')} AS {quote_ident('reward')}"], [
        "reward"
    ], []
    for i, s in enumerate(program.stakeholders):
        final.append(f"{u[i]} AS {quote_ident('u_' + s.name)}")
        out_names.append("u_" + s.name)
    for j, c in enumerate(program.clauses):
        if c.kind == "ENSURES":
            ok = ens_low.expr(c.expr)
            ensures.append(f"({ok})")
            final.append(f"(NOT ({ok})) AS {quote_ident('v_' + c.label)}")
        else:
            final.append(f"(NOT {holds[j]}) AS {quote_ident('v_' + c.label)}")
        out_names.append("v_" + c.label)
    for src, dst in (("__veto", "veto"), ("__pen", "penalty"), ("__out", "outside_bargaining_set")):
        final.append(f"{quote_ident(src)} AS {quote_ident(dst)}")
        out_names.append(dst)
    final.append(f"({' AND '.join(ensures) if ensures else 'TRUE'}) AS {quote_ident('ensures_ok')}")
    out_names.append("ensures_ok")
    return SqlProgram(program, params, tuple(stage_inputs), tuple(stage_clauses),
                      stage_utilities, stage_rule, tuple(final), tuple(out_names))


def _rule_sql(params: AggregationParams, u: list[str]) -> tuple[str, str]:
    """SQL of the rule's reward and outside-bargaining flag, summing in declaration order."""
    w = [sql_float(x) for x in params.weights]

    def chain(terms: list[str], op: str = "+") -> str:
        total = terms[0]
        for t in terms[1:]:
            total = f"({total} {op} {t})"
        return total

    if params.rule == "weighted_sum":
        return chain([f"({u[i]} * {w[i]})" for i in range(len(u))]), "FALSE"
    if params.rule == "utilitarian":
        return chain(list(u)), "FALSE"
    if params.rule == "max_min":
        regrets = [f"(({sql_float(params.ideal[i])} - {u[i]}) * {w[i]})" for i in range(len(u))]
        # greatest() propagates NaN in DuckDB (NaN sorts above numbers), like jnp.maximum.
        return f"(-greatest({', '.join(regrets)}))", "FALSE"
    if params.rule == "lexicographic":
        terms = [
            f"(({u[i]} - {sql_float(params.lex_lo[i])}) * {sql_float(c)})"
            for i, c in enumerate(params.lex_coef) if c != 0.0
        ]
        return (chain(terms) if terms else f"({u[0]} * {sql_float(0.0)})"), "FALSE"
    gaps = [f"({u[i]} - {sql_float(params.disagreement[i])})" for i in range(len(u))]
    inside = " AND ".join(f"({g} > {sql_float(0.0)})" for g in gaps)
    logs = chain([f"(CAST(ln(CAST({g} AS DOUBLE)) AS FLOAT) * {w[i]})" for i, g in enumerate(gaps)])
    return (
        f"(CASE WHEN {inside} THEN {logs} ELSE {sql_float(params.floor)} END)",
        f"(NOT ({inside}))",
    )
