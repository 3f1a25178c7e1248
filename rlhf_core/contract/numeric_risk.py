"""NaN / infinity lint: can a utility, the penalty or the reward be NaN or ±inf?

Over the declared input ranges (an input without a range may be any finite float32; inputs
themselves are never NaN), the interval analysis (``intervals``, exact mode) flags every
utility whose enclosure may be NaN or reach beyond float32's largest finite value (``3.4e38``:
the compiled programs compute in float32, so ``exp(200)`` is ``inf``). For a flagged utility the
**sub-expression at fault** is the innermost flagged node whose operands are not flagged
(``sqrt(y)``, ``log(x)``, ``x / (y - 0.5)``, ``exp(x)``), and a **witness** is searched: a
concrete assignment of the declared inputs, inside their ranges, for which NumPy float32
evaluation of the whole utility gives NaN or ±inf. Candidates are each input's bounds, midpoint,
quartiles and points just inside the bounds (and float32's extremes where a range is not
declared), every combination up to 32,768 rows; for a division, rows on either side of a zero
of the divisor are then bisected towards the zero. The penalty and the reward are checked the
same way on the whole program once the utilities are clean.

A risk with a witness is **confirmed**: ``contract lint`` warns about it, and ``contract sign``
and the pipeline refuse the contract unless it declares ``acknowledge: [nan_risk]``. A risk the
interval analysis cannot rule out but no candidate confirms (interval arithmetic ignores
correlations: ``IF y > 0 THEN sqrt(y) ELSE 0`` is safe) is a lint warning only.

Every row is evaluated as a run of its own, so normalisations take their neutral value
(see ``legal_blocks.normalize``); their values are bounded and never NaN.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlhf_core.contract import intervals as iv
from rlhf_core.contract.bounds import input_env, reward_bounds
from rlhf_core.contract.legal_blocks.ast import (
    Binary,
    Call,
    Expr,
    IfElse,
    Normalize,
    Pos,
    Unary,
)
from rlhf_core.contract.legal_blocks.compile_jax import evaluate_numpy
from rlhf_core.contract.legal_blocks.lower_array import Lowering
from rlhf_core.contract.legal_blocks.normalize import neutral_expr, neutral_program
from rlhf_core.contract.legal_blocks.printer import format_expr
from rlhf_core.contract.legal_blocks.walk import columns
from rlhf_core.contract.program import ContractProgram, InputDecl
from rlhf_core.contract.static_check import _columns, _row_dict
from rlhf_core.contract.static_check import _grid as full_grid

FLT_MAX = float(np.finfo(np.float32).max)
ACK_NAN_RISK = "nan_risk"
_MAX_ROWS = 32_768
_MAX_TEXT = 80


@dataclass(frozen=True)
class NanRisk:
    """One place where the program may produce NaN or ±inf.

    Attributes:
        where: What is affected: ``utility of stakeholder 'users'``, ``the penalty`` or
            ``the reward``.
        expr: Canonical text of the sub-expression at fault (empty for penalty / reward).
        location: ``file:line:col`` of that sub-expression (empty when unknown).
        reason: Why it can fail, e.g. ``sqrt of a value that can be negative``.
        witness: Input values (inside the declared ranges) that make it fail, or None.
        outcome: What the witness produces (``NaN``, ``inf`` or ``-inf``); ``NaN or inf``
            when unconfirmed.
        acknowledged: The contract declares ``acknowledge: [nan_risk]``.
    """

    where: str
    expr: str
    location: str
    reason: str
    witness: dict[str, Any] | None
    outcome: str
    acknowledged: bool = False

    @property
    def confirmed(self) -> bool:
        """A witness input reproduces the failure."""
        return self.witness is not None

    def subject(self) -> str:
        """``sqrt(y) at f.yaml:12:14`` (or just ``where`` for penalty / reward)."""
        at = f" at {self.location}" if self.location else ""
        return f"{self.expr}{at}" if self.expr else self.where

    def describe(self) -> str:
        """One line for ``contract lint``."""
        head = f"{self.where} can be {self.outcome}"
        if self.expr:
            head += f": {self.subject()}"
        if self.confirmed:
            values = ", ".join(f"{k} = {_show(v)}" for k, v in self.witness.items())  # type: ignore[union-attr]
            tail = f"; witness {values or '(any row)'} gives {self.outcome}"
        else:
            tail = "; interval analysis cannot rule it out, no witness found (not enforced)"
        ack = " [acknowledged]" if self.acknowledged else ""
        return f"nan_risk{ack}: {head} ({self.reason}){tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"where": self.where, "expr": self.expr, "location": self.location,
                "reason": self.reason, "witness": self.witness, "outcome": self.outcome,
                "confirmed": self.confirmed, "acknowledged": self.acknowledged}


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return str(np.float32(value))  # shortest text of the float32 value
    return repr(value)


def _risky(box: iv.Interval | None) -> bool:
    return box is not None and (box.nan or box.lo < -FLT_MAX or box.hi > FLT_MAX)


def _location(pos: Pos) -> str:
    # Parsed nodes carry their source line; nodes built in code have no position.
    return f"{pos.file}:{pos.line}:{pos.col}" if pos.source_line is not None else ""


def _short(expr: Expr) -> str:
    text = format_expr(expr)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def lint_env(program: ContractProgram) -> dict[str, iv.Interval]:
    """Interval per input for this lint: the declared ranges; an undeclared bound is float32's
    largest finite value (inputs are finite float32 numbers)."""
    env = input_env(program)
    for name, box in list(env.items()):
        if name.startswith("__"):
            continue
        env[name] = iv.Interval(max(box.lo, -FLT_MAX), min(box.hi, FLT_MAX), box.nan)
    return env


def _number_children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Unary):
        return (e.operand,) if e.op == "-" else ()
    if isinstance(e, Binary):
        return (e.left, e.right) if e.op in ("+", "-", "*", "/", "^") else ()
    if isinstance(e, Call):
        return () if e.fn == "len" else e.args
    if isinstance(e, IfElse):
        return (e.then, e.orelse)
    return ()  # Normalize is never NaN; comparisons and bools are not numbers


def fault(expr: Expr, trace: Mapping[int, iv.Interval]) -> Expr:
    """The innermost flagged sub-expression on a flagged path from ``expr`` (whose number
    operands are not flagged)."""
    node = expr
    while True:
        nxt = next((c for c in _number_children(node) if _risky(trace.get(id(c)))), None)
        if nxt is None or isinstance(node, Normalize):
            return node
        node = nxt


def _reason(node: Expr, trace: Mapping[int, iv.Interval]) -> tuple[str, Expr | None]:
    """(why ``node`` can be NaN / inf, the operand whose zero or sign matters)."""
    box = trace.get(id(node))
    over = box is not None and (box.lo < -FLT_MAX or box.hi > FLT_MAX)
    if isinstance(node, Call):
        arg = node.args[0] if node.args else None
        if node.fn == "sqrt":
            return "sqrt of a value that can be negative", arg
        if node.fn == "log":
            return "log of a value that can be 0 or negative", arg
        if node.fn == "exp":
            return "exp overflows float32 for arguments above ~88.7", None
    if isinstance(node, Binary):
        if node.op == "/":
            right = trace.get(id(node.right))
            if right is not None and right.lo <= 0.0 <= right.hi:
                return "division by a range containing 0", node.right
            return "the quotient overflows float32", None
        if node.op == "^":
            return "power of a value that can be negative, 0 or too large", None
        if node.op in ("+", "-") and not over:
            return "inf - inf", None
        return f"'{node.op}' overflows float32 (beyond ±3.4e38)", None
    if over:
        return "overflows float32 (beyond ±3.4e38)", None
    return "can be NaN", None


# -- witness search ---------------------------------------------------------------------------


def _axis(decl: InputDecl) -> list[float]:
    lo = -math.inf if decl.lo is None else float(decl.lo)
    hi = math.inf if decl.hi is None else float(decl.hi)
    if decl.dtype == "bool":
        return [0.0, 1.0]
    if decl.dtype == "str":
        lo = max(lo, 0.0)
    extremes = []
    if not math.isfinite(lo):
        extremes += [-FLT_MAX, -1e19, -1e3]
        lo = -1e3 if not math.isfinite(hi) else min(hi - 1e3, -1e3)
    if not math.isfinite(hi):
        extremes += [1e3, 1e19, FLT_MAX] if decl.dtype != "str" else [1e3, 1e6]
        hi = 1e3 if lo <= 1e3 else lo + 1e3
    span = hi - lo
    values = [lo + f * span for f in (0.0, 1e-3, 0.25, 0.5, 0.75, 1 - 1e-3, 1.0)] + extremes
    if decl.dtype in ("int", "str"):
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        values = ([float(v) for v in range(lo_i, hi_i + 1)] if hi_i - lo_i <= 16
                  else [float(min(max(round(v), lo_i), hi_i)) for v in values[:7]])
        values += [float(round(v)) for v in extremes]
    values = [v for v in values if decl.lo is None or v >= decl.lo]
    values = [v for v in values if decl.hi is None or v <= decl.hi]
    return list(dict.fromkeys(float(np.float32(v)) for v in values))


def _grid(decls: list[InputDecl]) -> np.ndarray:
    axes = [_axis(d) for d in decls]
    size = math.prod(len(a) for a in axes)
    if size <= _MAX_ROWS:
        return np.asarray(list(itertools.product(*axes)), dtype=np.float64).reshape(size, -1)
    rng = np.random.default_rng(0)
    picks = [rng.integers(0, len(a), _MAX_ROWS) for a in axes]
    return np.stack([np.asarray(a)[p] for a, p in zip(axes, picks, strict=True)], axis=1)


def _cols(decls: list[InputDecl], grid: np.ndarray) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for j, d in enumerate(decls):
        if d.dtype == "bool":
            cols[d.name] = grid[:, j] > 0.5
        elif d.dtype == "str":
            cols[f"{d.name}__len"] = grid[:, j].astype(np.float32)
        else:
            with np.errstate(over="ignore"):
                cols[d.name] = grid[:, j].astype(np.float32)
    return cols


def _sigmoid(x: np.ndarray) -> np.ndarray:
    one = np.float32(1.0)
    return one / (one + np.exp(-x))


def evaluate(expr: Expr, decls: list[InputDecl], grid: np.ndarray) -> np.ndarray:
    """``expr`` (normalisations neutral) in NumPy float32 on every row of ``grid``."""
    lowering = Lowering(np, np.float32, _sigmoid)
    with np.errstate(all="ignore"):
        value = lowering.expr(neutral_expr(expr), _cols(decls, grid))
        return np.broadcast_to(np.asarray(value, dtype=np.float32), (grid.shape[0],))


def _row(decls: list[InputDecl], row: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value, d in zip(row, decls, strict=True):
        if d.dtype == "bool":
            out[d.name] = bool(value > 0.5)
        elif d.dtype == "int":
            out[d.name] = int(value)
        elif d.dtype == "str":
            out[d.name] = _str_of(int(value))
        else:
            out[d.name] = float(np.float32(value))
    return out


def _str_of(length: int) -> str:
    """How a str input of a witness is shown: only its length matters."""
    return f"<str of length {length}>"


def _outcome(value: float) -> str:
    return "NaN" if math.isnan(value) else "inf" if value > 0 else "-inf"


def _bisect(expr: Expr, operand: Expr, decls: list[InputDecl], grid: np.ndarray,
            tries: int = 8) -> np.ndarray | None:
    """Rows near a zero of ``operand`` (float inputs moved along a segment between a row where
    it is negative and one where it is positive) where ``expr`` is not finite."""
    vals = evaluate(operand, decls, grid)
    neg, pos = np.flatnonzero(vals < 0), np.flatnonzero(vals > 0)
    floats = np.array([d.dtype == "float" for d in decls])
    if not floats.any():
        return None
    for a, b in itertools.islice(zip(neg, pos, strict=False), tries):
        p0, p1 = grid[a].copy(), grid[a].copy()
        p1[floats] = grid[b][floats]
        if evaluate(operand, decls, p1[None])[0] <= 0:
            continue
        lo_t, hi_t = 0.0, 1.0
        for _ in range(80):
            mid = (lo_t + hi_t) / 2
            point = p0 + mid * (p1 - p0)
            v = evaluate(operand, decls, point[None])[0]
            if v == 0:
                lo_t = hi_t = mid
                break
            lo_t, hi_t = (mid, hi_t) if v < 0 else (lo_t, mid)
        cands = np.stack([p0 + t * (p1 - p0) for t in (lo_t, hi_t)])
        cands[:, floats] = cands[:, floats].astype(np.float32)
        out = evaluate(expr, decls, cands)
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:
            return cands[bad[0]]
    return None


def _witness(expr: Expr, operand: Expr | None, decls: list[InputDecl]
             ) -> tuple[dict[str, Any], str] | None:
    if not decls:
        grid = np.zeros((1, 0))
    else:
        grid = _grid(decls)
    values = evaluate(expr, decls, grid)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        nan = bad[np.isnan(values[bad])]
        r = int(nan[0] if nan.size else bad[0])
        return _row(decls, grid[r]), _outcome(float(values[r]))
    if operand is not None and decls:
        row = _bisect(expr, operand, decls, grid)
        if row is not None:
            value = float(evaluate(expr, decls, row[None])[0])
            return _row(decls, row), _outcome(value)
    return None


def _expr_risk(where: str, expr: Expr, program: ContractProgram, env: Mapping[str, iv.Interval],
               acknowledged: bool) -> NanRisk | None:
    trace: dict[int, iv.Interval] = {}
    # Exact interval arithmetic: the float32 widening of the static check would flag every
    # operation near float32's largest value; the witness search confirms what is real.
    root = iv.interval_of(expr, env, rounding=False, trace=trace)
    if not _risky(root):
        return None
    node = fault(expr, trace)
    reason, operand = _reason(node, trace)
    used = columns(expr)
    decls = [d for d in program.inputs if d.name in used]
    found = _witness(expr, operand, decls)
    witness, outcome = found if found is not None else (None, "NaN or inf")
    return NanRisk(where, _short(node), _location(node.pos), reason, witness, outcome,
                   acknowledged)


def _program_witness(program: ContractProgram, field: str) -> tuple[dict[str, Any], str] | None:
    plain = neutral_program(program)
    grid = full_grid(plain)
    seg = np.arange(len(grid), dtype=np.int32)
    out = evaluate_numpy(plain, _columns(plain, grid), seg)
    values = np.asarray(getattr(out, field), dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(values))
    if not bad.size:
        return None
    r = int(bad[0])
    row = {k: _str_of(len(v)) if isinstance(v, str) else v
           for k, v in _row_dict(plain, grid[r]).items()}
    return row, _outcome(float(values[r]))


def nan_risks(program: ContractProgram) -> tuple[NanRisk, ...]:
    """Every place the program may give NaN / ±inf over the declared ranges (see module doc).

    Utilities are checked one by one; the penalty (sum of INVARIANT costs in float32) and the
    reward (the aggregation rule) only when every utility is clean, so each finding names its
    cause once.
    """
    acknowledged = ACK_NAN_RISK in program.acknowledge
    env = lint_env(program)
    risks = []
    for s in program.stakeholders:
        risk = _expr_risk(f"utility of stakeholder '{s.name}'", s.utility, program, env,
                          acknowledged)
        if risk is not None:
            risks.append(risk)
    if risks:
        return tuple(risks)
    total = np.float32(0.0)
    with np.errstate(over="ignore"):
        for c in program.clauses:
            if c.kind == "INVARIANT":
                cost = (1.0 if c.penalty is None else c.penalty) * (
                    1.0 if c.severity is None else c.severity)
                total = np.float32(total + np.float32(cost))
    if not np.isfinite(total):
        found = _program_witness(program, "penalty")
        witness, outcome = found if found is not None else (None, "inf")
        return (NanRisk("the penalty", "", "", "INVARIANT PENALTY x SEVERITY sum beyond float32's "
                        "largest value", witness, outcome, acknowledged),)
    if _risky(reward_bounds(program, rounding=False)):
        # Only a confirmed reward risk is reported: the interval of a Nash reward reaches -inf
        # (log of a gap near 0) although float32 never gets there.
        found = _program_witness(program, "reward")
        if found is not None:
            return (NanRisk("the reward", "", "", f"the {program.rule} aggregation of the "
                            "utilities overflows float32", found[0], found[1], acknowledged),)
    return ()


def blocking_nan_risks(program: ContractProgram) -> tuple[NanRisk, ...]:
    """Confirmed risks the contract does not acknowledge (what sign and the pipeline refuse)."""
    if ACK_NAN_RISK in program.acknowledge:
        return ()
    return tuple(r for r in nan_risks(program) if r.confirmed)


def refusal(risks: tuple[NanRisk, ...], what: str) -> str:
    """The one-line reason ``what`` (e.g. ``refusing to sign``) names for blocking risks."""
    first = risks[0]
    more = f" (and {len(risks) - 1} more)" if len(risks) > 1 else ""
    values = ", ".join(f"{k} = {_show(v)}" for k, v in (first.witness or {}).items())
    subject = f": {first.subject()}" if first.expr else ""
    return (f"{what}: {first.where} can be {first.outcome}{subject}"
            f" ({first.reason}; e.g. {values or 'any row'}){more}; fix the expression (e.g. "
            "clip or max(..., 1e-6) its argument) or add nan_risk to the contract's 'acknowledge' "
            "list and approve it again")
