"""Interval arithmetic over checked Legal-Blocks expressions.

Every number-valued expression gets an ``Interval`` ``[lo, hi]`` (bounds may be infinite) plus a
``nan`` flag saying whether the value may be NaN (0/0, log of a negative, inf - inf, ...).
Bool-valued expressions get a tri-state interval over {0, 1}: ``[1, 1]`` is always true,
``[0, 0]`` always false, ``[0, 1]`` unknown. Inputs take their declared ranges; bools are
``[0, 1]``; ``len(s)`` is ``[lo, hi]`` of the str input's declared range (default ``[0, inf]``).

Soundness: every operator and function maps boxes to enclosures of all values the real
operation can produce (division by an interval containing 0, log of non-positive values, sqrt of
negatives and overflowing exp/pow give unbounded intervals and/or the ``nan`` flag). With
``rounding=True`` each inexact arithmetic result is additionally widened outward by a relative
2**-20 (16 float32 ulps) and constants/declared bounds by their float32 rounding, which makes
the enclosure sound for the float32 evaluation of the compiled JAX / SQL programs too; the
static ENSURES check uses that mode. Aggregation parameters (ideal points, disagreement points)
use the exact mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

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
from rlhf_core.errors import ContractTypeError

INF = math.inf
_REL = 2.0**-20

GROUP_SIZE_KEYS = {"prompt": "__n_prompt", "run": "__n_run"}
"""``env`` keys holding the enclosure of a group's size (identifiers never start with ``__``)."""

MAX_RUN_ROWS = 2.0**63
"""Rows of a run are counted in int64: every group has fewer than 2**63 rows."""


@dataclass(frozen=True)
class Interval:
    """A closed enclosure ``[lo, hi]``; ``nan`` is True when the value may also be NaN."""

    lo: float
    hi: float
    nan: bool = False

    @property
    def is_true(self) -> bool:
        """Tri-state view: the bool is always true."""
        return self.lo >= 1.0 and not self.nan

    @property
    def is_false(self) -> bool:
        """Tri-state view: the bool is always false."""
        return self.hi <= 0.0 and not self.nan

    @property
    def bounded(self) -> bool:
        """Both bounds finite and the value never NaN."""
        return math.isfinite(self.lo) and math.isfinite(self.hi) and not self.nan

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the enclosure (NaN only when ``nan`` is set)."""
        if math.isnan(value):
            return self.nan
        return self.lo <= value <= self.hi


TRUE = Interval(1.0, 1.0)
FALSE = Interval(0.0, 0.0)
UNKNOWN = Interval(0.0, 1.0)
EVERYTHING = Interval(-INF, INF, True)
UNKNOWN_GROUP_SIZE = Interval(1.0, MAX_RUN_ROWS)


def hull(*items: Interval) -> Interval:
    """Smallest interval enclosing all ``items``."""
    return Interval(
        min(i.lo for i in items), max(i.hi for i in items), any(i.nan for i in items)
    )


def _f32_hull(value: float) -> Interval:
    """``value`` and its float32 rounding."""
    with np.errstate(over="ignore"):
        f = float(np.float32(value))
    return Interval(min(value, f), max(value, f))


def _widen(iv: Interval, rounding: bool) -> Interval:
    if not rounding:
        return iv
    lo = iv.lo - abs(iv.lo) * _REL if math.isfinite(iv.lo) else iv.lo
    hi = iv.hi + abs(iv.hi) * _REL if math.isfinite(iv.hi) else iv.hi
    return Interval(lo, hi, iv.nan)


def _clean(lo: float, hi: float, nan: bool) -> Interval:
    """Build an interval from possibly-NaN bound candidates (NaN bounds become unbounded)."""
    if math.isnan(lo):
        lo, nan = -INF, True
    if math.isnan(hi):
        hi, nan = INF, True
    return Interval(lo, hi, nan)


def _has_inf(a: Interval) -> bool:
    return math.isinf(a.lo) or math.isinf(a.hi)


def _contains_zero(a: Interval) -> bool:
    return a.lo <= 0.0 <= a.hi


def add(a: Interval, b: Interval) -> Interval:
    """``a + b``."""
    nan = a.nan or b.nan or (a.hi == INF and b.lo == -INF) or (a.lo == -INF and b.hi == INF)
    lo = a.lo + b.lo if not (math.isinf(a.lo) and math.isinf(b.lo) and a.lo != b.lo) else -INF
    hi = a.hi + b.hi if not (math.isinf(a.hi) and math.isinf(b.hi) and a.hi != b.hi) else INF
    return _clean(lo, hi, nan)


def neg(a: Interval) -> Interval:
    """``-a``."""
    return Interval(-a.hi, -a.lo, a.nan)


def mul(a: Interval, b: Interval) -> Interval:
    """``a * b`` (0 * inf may be NaN)."""
    nan = (
        a.nan
        or b.nan
        or (_contains_zero(a) and _has_inf(b))
        or (_contains_zero(b) and _has_inf(a))
    )
    products = []
    for x in (a.lo, a.hi):
        for y in (b.lo, b.hi):
            p = x * y
            products.append(0.0 if math.isnan(p) else p)
    return Interval(min(products), max(products), nan)


def div(a: Interval, b: Interval) -> Interval:
    """``a / b``: unbounded when ``b`` may be 0 (NaN too when ``a`` may also be 0)."""
    if _contains_zero(b):
        nan = a.nan or b.nan or _contains_zero(a) or _has_inf(a)
        return Interval(-INF, INF, nan)
    quotients = [x / y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    if any(math.isnan(q) for q in quotients):
        return EVERYTHING
    return Interval(min(quotients), max(quotients), a.nan or b.nan)


def _safe_pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        return INF
    except ValueError:
        return math.nan


def power(a: Interval, b: Interval, exponent: float | None) -> Interval:
    """``a ^ b``; ``exponent`` is the literal exponent when ``b`` is a constant."""
    nan = a.nan or b.nan
    if exponent is not None and float(exponent).is_integer():
        n = int(exponent)
        corners = [_safe_pow(a.lo, n), _safe_pow(a.hi, n)]
        if n > 0 and n % 2 == 0 and _contains_zero(a):
            corners.append(0.0)
        if n < 0 and _contains_zero(a):
            return Interval(-INF if n % 2 else 0.0, INF, nan)
        return _clean(min(corners), max(corners), nan or any(math.isnan(c) for c in corners))
    if a.lo > 0 or (a.lo >= 0 and b.lo > 0):
        corners = [_safe_pow(x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
        nan = nan or (_has_inf(a) and _contains_zero(b))
        return _clean(min(corners), max(corners), nan or any(math.isnan(c) for c in corners))
    return EVERYTHING


def _monotone(fn: Callable[[float], float], a: Interval) -> Interval:
    return _clean(fn(a.lo), fn(a.hi), a.nan)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def _log(x: float) -> float:
    if x < 0 or math.isnan(x):
        return math.nan
    return -INF if x == 0 else math.log(x)


def _sigmoid(x: float) -> float:
    return 0.0 if x == -INF else 1.0 / (1.0 + _exp(-x))


def call(fn: str, args: list[Interval]) -> Interval:
    """Interval of a registered function applied to argument intervals."""
    if fn == "min" or fn == "max":
        pick = min if fn == "min" else max
        return Interval(
            pick(a.lo for a in args), pick(a.hi for a in args), any(a.nan for a in args)
        )
    if fn == "clip":
        return call("min", [call("max", [args[0], args[1]]), args[2]])
    (a,) = args
    if fn == "abs":
        if a.lo >= 0:
            return a
        if a.hi <= 0:
            return neg(a)
        return Interval(0.0, max(-a.lo, a.hi), a.nan)
    if fn == "log":
        lo = _log(max(a.lo, 0.0)) if a.hi >= 0 else -INF
        hi = _log(a.hi) if a.hi >= 0 else -INF
        return Interval(lo, hi, a.nan or a.lo < 0)
    if fn == "sqrt":
        if a.hi < 0:
            return Interval(0.0, 0.0, True)
        return Interval(math.sqrt(max(a.lo, 0.0)), math.sqrt(a.hi), a.nan or a.lo < 0)
    monotone = {
        "exp": _exp,
        "sigmoid": _sigmoid,
        "tanh": math.tanh,
        "floor": lambda x: x if math.isinf(x) else float(math.floor(x)),
        "ceil": lambda x: x if math.isinf(x) else float(math.ceil(x)),
    }
    if fn in monotone:
        return _monotone(monotone[fn], a)
    raise ContractTypeError(f"no interval rule for function {fn!r}; register it in intervals.call")


_EXACT_FUNCTIONS = frozenset({"min", "max", "clip", "abs", "floor", "ceil"})


def normalize(fn: str, arg: Interval, group_size: Interval, rounding: bool = False) -> Interval:
    """Enclosure of ``fn(arg IN group)`` for groups of at most ``group_size.hi`` rows.

    ``rank`` and ``minmax`` lie in [0, 1]. A population z-score of a member of a group of ``n``
    finite values satisfies ``|z| <= sqrt(n - 1)`` (equality when one value differs from the
    ``n - 1`` others), and the compiled programs clamp to that bound, so ``zscore`` lies in
    ``[-sqrt(N - 1), sqrt(N - 1)]`` for the largest group size ``N``. None of them is ever NaN
    (non-finite arguments give the neutral value). An argument that is one constant over the
    whole box gives the neutral value (0 for ``zscore``, 0.5 otherwise).
    """
    neutral = 0.0 if fn == "zscore" else 0.5
    if arg.lo == arg.hi and math.isfinite(arg.lo) and not arg.nan:
        return Interval(neutral, neutral)
    if fn in ("rank", "minmax"):
        return Interval(0.0, 1.0)
    n = max(group_size.hi, 1.0)
    bound = math.sqrt(n - 1.0) if math.isfinite(n) else INF
    return _widen(Interval(-bound, bound), rounding)


def _compare(op: str, a: Interval, b: Interval) -> Interval:
    maybe_nan = a.nan or b.nan
    if op in ("<", "<="):
        strict = op == "<"
        true = (a.hi < b.lo) if strict else (a.hi <= b.lo)
        false = (a.lo >= b.hi) if strict else (a.lo > b.hi)
    elif op in (">", ">="):
        return _compare("<" if op == ">" else "<=", b, a)
    elif op == "==":
        true = a.lo == a.hi == b.lo == b.hi
        false = a.hi < b.lo or b.hi < a.lo
    else:
        eq = _compare("==", a, b)
        if maybe_nan:
            return TRUE if eq.is_false else UNKNOWN
        return FALSE if eq.is_true else TRUE if eq.is_false else UNKNOWN
    if true and not maybe_nan:
        return TRUE
    return FALSE if false else UNKNOWN


def _logic(op: str, a: Interval, b: Interval) -> Interval:
    if op == "AND":
        return Interval(min(a.lo, b.lo), min(a.hi, b.hi))
    if op == "OR":
        return Interval(max(a.lo, b.lo), max(a.hi, b.hi))
    return _logic("OR", Interval(1.0 - a.hi, 1.0 - a.lo), b)


def interval_of(
    expr: Expr,
    env: Mapping[str, Interval],
    rounding: bool = False,
    trace: dict[int, Interval] | None = None,
) -> Interval:
    """Enclosure of ``expr`` given enclosures of the names it reads.

    Args:
        expr: Checked Legal-Blocks expression.
        env: Interval per input name (and ``reward``); ``r.col`` reads ``env[col]``;
            ``len(s)`` reads ``env["<s>__len"]``; ``env["__n_prompt"]`` / ``env["__n_run"]``
            enclose group sizes for ``zscore`` (default ``[1, 2**63]``).
        rounding: Widen for float32 rounding (see module docstring).
        trace: When given, filled with ``id(node) -> interval`` for every node evaluated
            (the NaN / overflow lint uses it to find the sub-expression at fault).

    Returns:
        The interval (tri-state for bool expressions).

    Raises:
        ContractTypeError: A name is not in ``env``.
    """

    def lookup(name: str, node: Expr) -> Interval:
        if name not in env:
            pos = node.pos
            raise ContractTypeError(
                f"no range known for {name!r}; declare it as an input",
                pos.file,
                pos.line,
                pos.col,
            )
        return env[name]

    def go(e: Expr) -> Interval:
        result = step(e)
        if trace is not None:
            trace[id(e)] = result
        return result

    def step(e: Expr) -> Interval:
        if isinstance(e, Num):
            return _f32_hull(e.value) if rounding else Interval(e.value, e.value)
        if isinstance(e, Bool):
            return TRUE if e.value else FALSE
        if isinstance(e, Name):
            return lookup(e.id, e)
        if isinstance(e, Attr):
            return lookup(e.column, e)
        if isinstance(e, Unary):
            inner = go(e.operand)
            return neg(inner) if e.op == "-" else Interval(1.0 - inner.hi, 1.0 - inner.lo)
        if isinstance(e, Binary):
            left, right = go(e.left), go(e.right)
            if e.op in ("AND", "OR", "IMPLIES"):
                return _logic(e.op, left, right)
            if e.op == "^":
                exponent = e.right.value if isinstance(e.right, Num) else None
                return _widen(power(left, right, exponent), rounding)
            fn = {"+": add, "-": lambda x, y: add(x, neg(y)), "*": mul, "/": div}[e.op]
            return _widen(fn(left, right), rounding)
        if isinstance(e, Compare):
            values = [go(o) for o in e.operands]
            result = TRUE
            for op, a, b in zip(e.ops, values, values[1:], strict=False):
                result = _logic("AND", result, _compare(op, a, b))
            return result
        if isinstance(e, Call):
            if e.fn == "len":
                arg = e.args[0]
                column = arg.column if isinstance(arg, Attr) else getattr(arg, "id", "")
                return lookup(f"{column}__len", arg)
            result = call(e.fn, [go(a) for a in e.args])
            return result if e.fn in _EXACT_FUNCTIONS else _widen(result, rounding)
        if isinstance(e, IfElse):
            cond = go(e.cond)
            if cond.is_true:
                return go(e.then)
            if cond.is_false:
                return go(e.orelse)
            return hull(go(e.then), go(e.orelse))
        if isinstance(e, Normalize):
            size = env.get(GROUP_SIZE_KEYS.get(e.group, ""), UNKNOWN_GROUP_SIZE)
            return normalize(e.fn, go(e.arg), size, rounding)
        raise TypeError(f"not a Legal-Blocks expression node: {type(e).__name__}")

    return go(expr)
