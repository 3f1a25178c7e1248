"""Hypothesis strategies: random well-typed Legal-Blocks ASTs, programs and dyadic data.

Data values lie on a 1/8 grid and constants are dyadic, so sums and products are exact in
float32 and the JAX and DuckDB programs must agree bit for bit on every comparison; quotients
and transcendental functions are where the reward tolerance applies.

Normalisations (``rank`` / ``minmax`` / ``zscore`` ``(x IN prompt | run)``) take *exact*
arguments (``+ - *``, ``abs``, ``floor``, ``ceil``, ``min``, ``max``, ``clip``, ``IF`` over the
inputs and dyadic constants: bit-identical in both engines). ``rank`` and ``minmax`` are then
bit-identical too (one correctly rounded division) and may appear anywhere, comparisons
included; ``zscore`` is computed in float32 by JAX and in DOUBLE by DuckDB, so it only appears
as a scaled term of a utility, where the reward tolerance applies.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

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
    Unary,
)
from rlhf_core.contract.program import ContractProgram, InputDecl, StakeholderProgram

NUM_INPUTS = {"a": (0.0, 4.0), "b": (-2.0, 2.0), "c": (0.5, 3.0), "k": (0.0, 3.0)}
BOOL_INPUTS = ("s", "t")
INPUTS = (
    InputDecl("a", "float", 0.0, 4.0),
    InputDecl("b", "float", -2.0, 2.0),
    InputDecl("c", "float", 0.5, 3.0),
    InputDecl("k", "int", 0.0, 3.0),
    InputDecl("s", "bool"),
    InputDecl("t", "bool"),
)
CONSTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
CMP_OPS = ("<", "<=", ">", ">=", "==", "!=")
SAFE_FNS = ("abs", "sigmoid", "tanh", "floor", "ceil")
ALL_FNS = SAFE_FNS + ("log", "exp", "sqrt")
EXACT_FNS = ("abs", "floor", "ceil")
GROUPS = ("prompt", "run")


def _leaf_name(name: str, var: str | None) -> Expr:
    return Attr(var, name) if var else Name(name)


@st.composite
def exact_exprs(draw: st.DrawFn, depth: int = 2) -> Expr:
    """A number expression of the inputs whose float32 value is exact in both engines."""
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        if draw(st.integers(0, 3)) == 0:
            return Num(draw(st.sampled_from(CONSTS)))
        return Name(draw(st.sampled_from(sorted(NUM_INPUTS))))
    sub = exact_exprs(depth - 1)
    kind = draw(st.sampled_from(["neg", "add", "sub", "mul", "fn", "minmax", "clip", "if"]))
    if kind == "neg":
        return Unary("-", draw(sub))
    if kind in ("add", "sub", "mul"):
        return Binary({"add": "+", "sub": "-", "mul": "*"}[kind], draw(sub), draw(sub))
    if kind == "fn":
        return Call(draw(st.sampled_from(EXACT_FNS)), (draw(sub),))
    if kind == "minmax":
        return Call(draw(st.sampled_from(("min", "max"))), (draw(sub), draw(sub)))
    if kind == "clip":
        return Call("clip", (draw(sub), draw(sub), draw(sub)))
    cond = Compare((draw(st.sampled_from(CMP_OPS)),), (draw(sub), draw(sub)))
    return IfElse(cond, draw(sub), draw(sub))


def normalizations(fns: tuple[str, ...] = ("rank", "minmax")) -> st.SearchStrategy[Expr]:
    """``fn(exact expression IN prompt | run)``."""
    return st.builds(Normalize, st.sampled_from(fns), exact_exprs(), st.sampled_from(GROUPS))


@st.composite
def num_exprs(
    draw: st.DrawFn, depth: int = 3, var: str | None = None, safe: bool = False,
    extra: tuple[str, ...] = (), norm: bool = False,
) -> Expr:
    """A number-valued expression; ``safe`` avoids ops that can be unbounded or NaN; ``norm``
    lets ``rank`` / ``minmax`` appear (never inside a quantifier)."""
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        choice = draw(st.integers(0, 3 if norm and var is None else 2))
        if choice == 0:
            return Num(draw(st.sampled_from(CONSTS)))
        if choice == 3:
            return draw(normalizations())
        if extra and draw(st.booleans()):
            return Name(draw(st.sampled_from(extra)))
        return _leaf_name(draw(st.sampled_from(sorted(NUM_INPUTS))), var)
    sub = num_exprs(depth - 1, var, safe, extra, norm)
    kinds = ["neg", "add", "sub", "mul", "fn", "minmax", "clip", "if"]
    if not safe:
        kinds += ["div", "pow"]
    kind = draw(st.sampled_from(kinds))
    if kind == "neg":
        return Unary("-", draw(sub))
    if kind in ("add", "sub", "mul", "div"):
        op = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind]
        return Binary(op, draw(sub), draw(sub))
    if kind == "pow":
        return Binary("^", draw(sub), Num(draw(st.sampled_from((2.0, 3.0, 0.5)))))
    if kind == "fn":
        return Call(draw(st.sampled_from(SAFE_FNS if safe else ALL_FNS)), (draw(sub),))
    if kind == "minmax":
        n = draw(st.integers(2, 3))
        return Call(draw(st.sampled_from(("min", "max"))), tuple(draw(sub) for _ in range(n)))
    if kind == "clip":
        return Call("clip", (draw(sub), draw(sub), draw(sub)))
    return IfElse(draw(bool_exprs(depth - 1, var, safe, extra, norm)), draw(sub), draw(sub))


@st.composite
def bool_exprs(
    draw: st.DrawFn, depth: int = 3, var: str | None = None, safe: bool = False,
    extra: tuple[str, ...] = (), norm: bool = False,
) -> Expr:
    """A bool-valued expression over the test inputs (``var.col`` inside quantifiers)."""
    sub_num = num_exprs(max(depth - 1, 0), var, safe, extra, norm)
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        choice = draw(st.integers(0, 2))
        if choice == 0:
            return Bool(draw(st.booleans()))
        if choice == 1:
            return _leaf_name(draw(st.sampled_from(BOOL_INPUTS)), var)
        return Compare((draw(st.sampled_from(CMP_OPS)),), (draw(sub_num), draw(sub_num)))
    kind = draw(st.sampled_from(["not", "and", "or", "implies", "cmp", "chain"]))
    sub = bool_exprs(depth - 1, var, safe, extra, norm)
    if kind == "not":
        return Unary("NOT", draw(sub))
    if kind in ("and", "or", "implies"):
        return Binary(kind.upper(), draw(sub), draw(sub))
    n_ops = 2 if kind == "chain" else 1
    ops = tuple(draw(st.sampled_from(CMP_OPS)) for _ in range(n_ops))
    return Compare(ops, tuple(draw(sub_num) for _ in range(n_ops + 1)))


@st.composite
def utilities(draw: st.DrawFn, safe: bool, norm: bool) -> Expr:
    """A utility; with ``norm``, possibly plus a scaled ``zscore`` term."""
    base = draw(num_exprs(2, safe=safe, norm=norm))
    if norm and draw(st.booleans()):
        z = draw(normalizations(("zscore",)))
        return Binary("+", base, Binary("*", Num(draw(st.sampled_from((0.25, 0.5)))), z))
    return base


@st.composite
def programs(draw: st.DrawFn, rule: str, norm: bool = False) -> ContractProgram:
    """A program with 2-3 stakeholders and one clause of every kind (FORALL and/or EXISTS);
    ``norm``: utilities and REQUIRES / INVARIANT / ENSURES bodies may normalise."""
    k = draw(st.integers(2, 3))
    parts = draw(
        st.lists(st.integers(1, 6), min_size=k, max_size=k).filter(lambda p: sum(p) <= 8)
    )
    parts[-1] += 8 - sum(parts)
    safe = rule in ("nash_bargaining", "max_min", "lexicographic")
    stakeholders = tuple(
        StakeholderProgram(
            f"s{i}",
            parts[i] / 8,
            draw(utilities(safe, norm)),
            draw(st.sampled_from((None, None, -1.0, 0.0))) if rule == "nash_bargaining" else None,
        )
        for i in range(k)
    )
    quantifiers = draw(st.sampled_from((("EXISTS",), ("FORALL",), ("EXISTS", "FORALL"))))
    clauses = [
        Clause("req", "REQUIRES", draw(bool_exprs(2, norm=norm))),
        Clause(
            "inv", "INVARIANT", draw(bool_exprs(2, norm=norm)),
            penalty=draw(st.sampled_from((0.25, 0.5, 1.0))),
            severity=draw(st.sampled_from((1.0, 2.0))),
        ),
        Clause("ens", "ENSURES", Binary(
            draw(st.sampled_from(("AND", "OR"))),
            Compare((draw(st.sampled_from(CMP_OPS)),),
                    (Name("reward"), Num(draw(st.sampled_from((-1.0, 0.0, 0.5, 1.0)))))),
            draw(bool_exprs(1, extra=("reward",), norm=norm)),
        )),
    ]
    for i, kind in enumerate(quantifiers):
        clauses.append(Clause(f"q{i}", kind, draw(bool_exprs(2, var="r")), var="r"))
    order = tuple(draw(st.permutations([s.name for s in stakeholders])))
    return ContractProgram(
        name=f"random-{rule}",
        inputs=INPUTS,
        stakeholders=stakeholders,
        rule=rule,
        clauses=tuple(clauses),
        lex_order=order if rule == "lexicographic" else (),
        lex_tolerance=draw(st.sampled_from((0.0, 0.25, 0.5))),
        floor_reward=draw(st.sampled_from((-1.0, -2.0))),
        max_candidates=draw(st.sampled_from((None, 64))) if norm else None,
    )


def dyadic_columns(seed: int, n: int, prompts: int = 6) -> dict[str, np.ndarray]:
    """Random test data on a 1/8 grid inside the declared ranges, unsorted prompt ids."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for name, (lo, hi) in NUM_INPUTS.items():
        step = 1.0 if name == "k" else 0.125
        grid = np.arange(lo, hi + step / 2, step)
        cols[name] = rng.choice(grid, n).astype(np.int64 if name == "k" else np.float32)
    for name in BOOL_INPUTS:
        cols[name] = rng.random(n) < 0.5
    cols["prompt_id"] = rng.integers(0, prompts, n).astype(np.int64)
    cols["row_id"] = np.arange(n, dtype=np.int64)
    return cols
