"""Lowering of a checked ContractProgram to array code, shared by the JAX and NumPy backends.

``evaluate_program`` is written once against an array namespace (``jax.numpy`` while tracing the
jitted contract, ``numpy`` for the eager baseline); the backends supply the namespace, the
literal constants and the quantifier reduction.

Semantics (identical in the DuckDB SQL compiler):
    * numbers are float32 (int inputs and ``len`` are cast); bools are bool arrays;
      arithmetic is IEEE (x/0 -> ±inf or NaN, log(0) -> -inf, log/sqrt of negatives -> NaN);
      comparisons with NaN are false (``!=`` true); min/max propagate NaN;
      ``clip(x, lo, hi) = min(max(x, lo), hi)``; ``sigmoid(x) = 1 / (1 + exp(-x))``.
    * ``len(s)`` reads the precomputed column ``<s>__len`` (code points; ``score_table``
      fills it from the str column, SQL uses ``length(s)``).
    * REQUIRES violated on a row -> the row is vetoed (floor reward).
    * INVARIANT violated -> ``penalty += PENALTY * SEVERITY``; ``reward = R - penalty``.
    * FORALL / EXISTS: the body is evaluated per candidate (``r.col`` reads the candidate's
      column) and reduced over the prompt (rows sharing a segment id); when the prompt fails
      the quantifier, every row of it is flagged in the clause's violation column AND vetoed
      (floor reward), so a prompt that breaks a group rule is never used for training.
    * Rows outside the Nash bargaining set also get the floor reward (penalty not subtracted).
    * An extra veto mask (``null_veto``: the ingest kept a row whose ``on_null: veto`` input was
      null) is ORed into ``veto`` before the floor; the row is scored like any other otherwise.
    * ENSURES is evaluated at run time on the final reward; its violation column is set where it
      fails and ``ensures_ok`` is the AND of all ENSURES clauses. It never changes the reward.
    * ``zscore`` / ``rank`` / ``minmax`` ``(x IN prompt | run)``: the backend's ``normalize``
      callback receives the node and ``x`` on every row (semantics in ``normalize``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from rlhf_core.contract.aggregation import AggregationParams, aggregate
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
from rlhf_core.contract.legal_blocks.walk import walk
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import ContractTypeError

Array = Any
QuantifierFn = Callable[[str, Array], Array]
NormalizeFn = Callable[[Normalize, Array], Array]


class ContractOutputs(NamedTuple):
    """Per-row outputs of a compiled contract (a pytree).

    Attributes:
        reward: float32 [n] final reward.
        utilities: float32 [n, k] stakeholder utilities (declaration order).
        violations: bool [n, n_clauses], one column per clause in file order.
        veto: bool [n] REQUIRES violated or the prompt failed a FORALL / EXISTS.
        penalty: float32 [n] total INVARIANT penalty.
        outside_bargaining_set: bool [n] Nash rule only: some ``u_i <= d_i``.
        ensures_ok: bool [n] every ENSURES clause holds on the row.
    """

    reward: Array
    utilities: Array
    violations: Array
    veto: Array
    penalty: Array
    outside_bargaining_set: Array
    ensures_ok: Array


def literal_values(program: ContractProgram) -> tuple[float, ...]:
    """Distinct numeric literals of the program, in first-seen order."""
    exprs = [s.utility for s in program.stakeholders] + [c.expr for c in program.clauses]
    seen: dict[float, None] = {}
    for expr in exprs:
        for node in walk(expr):
            if isinstance(node, Num):
                seen.setdefault(float(node.value), None)
    return tuple(seen)


def clause_cost(clause: Clause) -> float:
    """``PENALTY * SEVERITY`` of an INVARIANT (defaults 1.0)."""
    penalty = 1.0 if clause.penalty is None else float(clause.penalty)
    return penalty * (1.0 if clause.severity is None else float(clause.severity))


def _exact_reciprocal(divisor: Expr) -> bool:
    """A literal power of two: multiplying by its reciprocal is the exact quotient."""
    if not isinstance(divisor, Num) or divisor.value == 0:
        return False
    mantissa, _ = math.frexp(abs(float(divisor.value)))
    return mantissa == 0.5


def _type_error(node: Expr, message: str) -> ContractTypeError:
    pos = node.pos
    return ContractTypeError(message, pos.file, pos.line, pos.col, pos.source_line)


class Lowering:
    """Turns expressions into array operations.

    Args:
        xp: Array namespace (``jax.numpy`` or ``numpy``).
        const: Maps a literal value to a float32 scalar (traced or concrete).
        sigmoid: The namespace's logistic function.
        divide: IEEE division ``a / b`` (the JAX backend keeps XLA from turning a division
            by a scalar into a multiplication by its reciprocal).
        normalize: ``(node, x) -> values`` of a ``zscore`` / ``rank`` / ``minmax`` node given its
            argument ``x`` (broadcast to rows by the callback); None when the program has none.
    """

    def __init__(
        self,
        xp: Any,
        const: Callable[[float], Array],
        sigmoid: Callable,
        divide: Callable[[Array, Array], Array] | None = None,
        normalize: NormalizeFn | None = None,
    ) -> None:
        self.xp = xp
        self.const = const
        self.sigmoid = sigmoid
        self.divide = divide or (lambda a, b: a / b)
        self.normalize = normalize

    def expr(self, e: Expr, cols: Mapping[str, Array], var: str | None = None) -> Array:
        """Array value of ``e``; ``var`` is the quantifier variable when inside one."""
        xp = self.xp
        if isinstance(e, Num):
            return self.const(float(e.value))
        if isinstance(e, Bool):
            return np.bool_(e.value)
        if isinstance(e, Name):
            if var is not None and e.id != "reward":
                raise _type_error(e, f"bare input {e.id!r} inside a quantifier; write {var}.{e.id}")
            return cols[e.id]
        if isinstance(e, Attr):
            if e.var != var:
                raise _type_error(e, f"{e.var}.{e.column} used outside its quantifier")
            return cols[e.column]
        if isinstance(e, Unary):
            inner = self.expr(e.operand, cols, var)
            return -inner if e.op == "-" else xp.logical_not(inner)
        if isinstance(e, Binary):
            a, b = self.expr(e.left, cols, var), self.expr(e.right, cols, var)
            if e.op == "/" and not _exact_reciprocal(e.right):
                return self.divide(a, b)
            ops = {
                "+": lambda: a + b,
                "-": lambda: a - b,
                "*": lambda: a * b,
                "/": lambda: a / b,
                "^": lambda: xp.power(a, b),
                "AND": lambda: xp.logical_and(a, b),
                "OR": lambda: xp.logical_or(a, b),
                "IMPLIES": lambda: xp.logical_or(xp.logical_not(a), b),
            }
            return ops[e.op]()
        if isinstance(e, Compare):
            values = [self.expr(o, cols, var) for o in e.operands]
            result = None
            for op, a, b in zip(e.ops, values, values[1:], strict=False):
                cmp = {
                    "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b,
                }[op]
                result = cmp if result is None else xp.logical_and(result, cmp)
            return result
        if isinstance(e, Call):
            return self._call(e, cols, var)
        if isinstance(e, IfElse):
            return xp.where(
                self.expr(e.cond, cols, var),
                self.expr(e.then, cols, var),
                self.expr(e.orelse, cols, var),
            )
        if isinstance(e, Normalize):
            if self.normalize is None:
                raise _type_error(e, f"{e.fn}(... IN {e.group}) needs group statistics here")
            return self.normalize(e, self.expr(e.arg, cols, var))
        raise TypeError(f"not a Legal-Blocks expression node: {type(e).__name__}")

    def _call(self, e: Call, cols: Mapping[str, Array], var: str | None) -> Array:
        xp = self.xp
        if e.fn == "len":
            arg = e.args[0]
            column = arg.column if isinstance(arg, Attr) else getattr(arg, "id", "")
            return cols[f"{column}__len"]
        args = [self.expr(a, cols, var) for a in e.args]
        if e.fn in ("min", "max"):
            fold = xp.minimum if e.fn == "min" else xp.maximum
            out = args[0]
            for a in args[1:]:
                out = fold(out, a)
            return out
        if e.fn == "clip":
            return xp.minimum(xp.maximum(args[0], args[1]), args[2])
        unary = {
            "abs": xp.abs, "log": xp.log, "exp": xp.exp, "sqrt": xp.sqrt, "tanh": xp.tanh,
            "floor": xp.floor, "ceil": xp.ceil, "sigmoid": self.sigmoid,
        }
        if e.fn not in unary:
            raise _type_error(e, f"function {e.fn!r} has no array lowering")
        return unary[e.fn](args[0])


def evaluate_program(
    program: ContractProgram,
    params: AggregationParams,
    cols: Mapping[str, Array],
    n: int,
    lowering: Lowering,
    quantifier: QuantifierFn | None,
    extra_veto: Array | None = None,
) -> ContractOutputs:
    """Evaluate every output of ``program`` on ``n`` rows of prepared columns.

    Args:
        program: Checked program.
        params: Its aggregation parameters.
        cols: float32 / bool arrays [n] per input (``<s>__len`` for str inputs).
        n: Number of rows.
        lowering: Backend lowering.
        quantifier: ``(kind, body [n] bool) -> holds [n] bool`` segment reduction broadcast
            back to rows; required when the program has FORALL / EXISTS clauses.
        extra_veto: Optional bool [n] rows vetoed whatever the clauses say (``null_veto``).

    Returns:
        ContractOutputs in the lowering's namespace.
    """
    xp = lowering.xp

    def rows(x: Array, dtype: Any) -> Array:
        return xp.broadcast_to(xp.asarray(x, dtype=dtype), (n,))

    utilities = [rows(lowering.expr(s.utility, cols), np.float32) for s in program.stakeholders]
    u = xp.stack(utilities, axis=1)
    base, outside = aggregate(u, params)
    penalty = xp.zeros((n,), dtype=np.float32)
    veto = xp.zeros((n,), dtype=bool)
    violated: list[Array | None] = []
    for clause in program.clauses:
        if clause.kind == "ENSURES":
            violated.append(None)
            continue
        if clause.kind in ("FORALL", "EXISTS"):
            if quantifier is None:
                raise _type_error(clause.expr, f"clause {clause.label!r} needs prompt segments")
            body = rows(lowering.expr(clause.expr, cols, clause.var), bool)
            bad = xp.logical_not(quantifier(clause.kind, body))
        else:
            bad = xp.logical_not(rows(lowering.expr(clause.expr, cols), bool))
        if clause.kind == "INVARIANT":
            penalty = penalty + xp.where(bad, np.float32(clause_cost(clause)), np.float32(0.0))
        else:
            veto = xp.logical_or(veto, bad)
        violated.append(bad)
    if extra_veto is not None:
        veto = xp.logical_or(veto, xp.asarray(extra_veto, dtype=bool))
    floored = xp.logical_or(veto, outside)
    reward = xp.where(floored, np.float32(params.floor), base - penalty).astype(np.float32)
    with_reward = {**cols, "reward": reward}
    ensures_ok = xp.ones((n,), dtype=bool)
    for i, clause in enumerate(program.clauses):
        if clause.kind == "ENSURES":
            ok = rows(lowering.expr(clause.expr, with_reward), bool)
            ensures_ok = xp.logical_and(ensures_ok, ok)
            violated[i] = xp.logical_not(ok)
    violations = (
        xp.stack(violated, axis=1) if violated else xp.zeros((n, 0), dtype=bool)
    )
    return ContractOutputs(reward, u, violations, veto, penalty, outside, ensures_ok)
