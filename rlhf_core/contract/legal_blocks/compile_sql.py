"""Compile a checked ContractProgram into DuckDB SQL with the same outputs as the JAX program.

``compile_sql(program).select(relation, id_columns)`` is one SELECT producing ``reward``,
``u_<stakeholder>``, ``v_<clause label>``, ``veto``, ``penalty``, ``outside_bargaining_set`` and
``ensures_ok`` (semantics in ``lower_array``). Safety: identifiers are quoted and come only from
the program (declared inputs, stakeholder names, clause labels, group column) or the caller's
id-column list; no value is interpolated except numeric literals of the checked AST and the
derived aggregation constants, rendered ``repr``-exact as ``CAST(<double> AS FLOAT)``.

Float handling: inputs are cast to FLOAT (float32) so DuckDB's single-precision ``+ - * /``
give the same bits as JAX (except where XLA fuses a product into an FMA); see ``sql_expr`` for
transcendental functions and the NaN / overflow guards. Quantifiers are ``bool_or`` /
``bool_and`` window functions over the group column; window queries do not preserve input row
order, so pass ``order_by``.

Normalisations (``zscore`` / ``rank`` / ``minmax`` ``(x IN prompt | run)``, semantics in
``normalize``) add two stages, only to programs that use them: one evaluates each argument as a
DOUBLE that is NULL when the FLOAT value is not finite, the next applies window functions over
``PARTITION BY <group column>`` (prompt) or ``OVER ()`` (the relation is the run): ``avg`` /
``stddev_pop`` / ``min`` / ``max`` / ``count`` and, for ``rank``, ``rank()`` plus a count of ties.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from rlhf_core.contract.aggregation import AggregationParams
from rlhf_core.contract.bounds import aggregation_params, input_env, reward_bounds
from rlhf_core.contract.legal_blocks.ast import Normalize
from rlhf_core.contract.legal_blocks.lower_array import clause_cost
from rlhf_core.contract.legal_blocks.normalize import needs_prompt_groups, normalizations
from rlhf_core.contract.legal_blocks.sql_expr import (
    MAX_SQL_CHARS,
    SqlLowering,
    quote_ident,
    sql_float,
)
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import SchemaMismatchError

__all__ = ["MAX_SQL_CHARS", "SqlProgram", "compile_sql", "quote_ident", "sql_float"]

def _in(i: int) -> str:
    return quote_ident(f"__in{i}")


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
    stage_norm_args: tuple[str, ...] = ()
    stage_norms: tuple[str, ...] = ()
    veto_expr: str = "FALSE"

    def select(
        self, relation: str, id_columns: Sequence[str] = (), order_by: Sequence[str] = (),
        veto_column: str | None = None,
    ) -> str:
        """One SELECT over ``relation`` returning ``id_columns`` then the outputs.

        Args:
            relation: Table / view / registered relation name (quoted as one identifier).
            id_columns: Columns passed through unchanged (identifiers, quoted).
            order_by: Columns (among ``id_columns``) to order the result by.
            veto_column: A bool column of ``relation`` (``null_veto``) ORed into ``veto``
                before the floor reward (NULL counts as false), as the JAX program's ``veto``.

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
        inputs, rule = list(self.stage_inputs), list(self.stage_rule)
        if veto_column is not None:
            extra = quote_ident("__xveto")
            inputs.append(f"COALESCE(CAST({quote_ident(veto_column)} AS BOOLEAN), FALSE) AS {extra}")
            veto = f"({self.veto_expr}) AS {quote_ident('__veto')}"
            rule[rule.index(veto)] = f"(({self.veto_expr}) OR {extra}) AS {quote_ident('__veto')}"
        first = ", ".join(ids + inputs)
        stages = [f"__s0 AS (SELECT {first} FROM {quote_ident(relation)})"]
        source = "__s0"
        if self.stage_norms:
            stages += [
                f"__sa AS (SELECT *, {', '.join(self.stage_norm_args)} FROM __s0)",
                f"__sn AS (SELECT *, {', '.join(self.stage_norms)} FROM __sa)",
            ]
            source = "__sn"
        stages += [
            f"__s1 AS (SELECT *, {', '.join(self.stage_utilities + self.stage_clauses)} FROM {source})",
            f"__s2 AS (SELECT *, {', '.join(rule[:-1])} FROM __s1)",
            f"__s3 AS (SELECT *, {rule[-1]} FROM __s2)",
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
    if needs_prompt_groups(program):
        group = quote_ident(program.group_column)
        stage_inputs.append(f"{group} AS {quote_ident('__group')}")
    norm_args, norm_cols, norms = _normalization_stages(program, names, env)
    low = SqlLowering(names, env, norms)
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
    ens_low = SqlLowering({**names, "reward": quote_ident("__reward")}, ens_env, norms)
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
                      stage_utilities, stage_rule, tuple(final), tuple(out_names),
                      norm_args, norm_cols, veto)


def _normalization_stages(
    program: ContractProgram, names: dict[str, str], env: dict
) -> tuple[tuple[str, ...], tuple[str, ...], dict[Normalize, str]]:
    """(argument columns, normalised columns, node -> column) of the program's
    normalisations; identical nodes share one column."""
    nodes: dict[Normalize, int] = {}
    for node in normalizations(program):
        nodes.setdefault(node, len(nodes))
    if not nodes:
        return (), (), {}
    low = SqlLowering(names, env)
    args, cols, out = [], [], {}
    for node, i in nodes.items():
        d = quote_ident(f"__d{i}")
        a = low.expr(node.arg)
        args.append(f"(CASE WHEN isfinite({a}) THEN CAST({a} AS DOUBLE) END) AS {d}")
        part = f"PARTITION BY {quote_ident('__group')}" if node.group == "prompt" else ""
        key = f"{quote_ident('__group')}, " if node.group == "prompt" else ""
        w = f"OVER ({part})"
        cnt, mn, mx = f"count({d}) {w}", f"min({d}) {w}", f"max({d}) {w}"
        if node.fn == "zscore":
            sd = f"stddev_pop({d}) {w}"
            bound = f"sqrt({cnt} - 1)"
            z = f"(({d} - avg({d}) {w}) / {sd})"
            value = (f"CASE WHEN {d} IS NULL OR {cnt} <= 1 OR {mn} = {mx} OR {sd} = 0 THEN 0.0 "
                     f"ELSE greatest(-{bound}, least({bound}, {z})) END")
        elif node.fn == "minmax":
            value = (f"CASE WHEN {d} IS NULL OR {mn} = {mx} THEN 0.5 "
                     f"ELSE greatest(0.0, least(1.0, ({d} - {mn}) / ({mx} - {mn}))) END")
        else:
            less = f"(rank() OVER (PARTITION BY {key}({d} IS NULL) ORDER BY {d}) - 1)"
            ties = f"(count(*) OVER (PARTITION BY {key}{d}) - 1)"
            value = (f"CASE WHEN {d} IS NULL OR {cnt} <= 1 THEN 0.5 "
                     f"ELSE greatest(0.0, least(1.0, ({less} + {ties} / 2.0) / ({cnt} - 1))) END")
        col = quote_ident(f"__n{i}")
        cols.append(f"CAST({value} AS FLOAT) AS {col}")
        out[node] = col
    return tuple(args), tuple(cols), out


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
