"""Static check of ENSURES clauses by interval arithmetic over the declared input ranges.

For each ENSURES clause the reward enclosure (``bounds.reward_bounds``, float32-sound) and the
input box are propagated through the clause's expression:

* ``proved``: the clause is true everywhere in the box;
* ``refuted``: a concrete row inside the box violates it, and the compiled JAX function,
  evaluated on that single row (its own prompt), confirms the violation;
* ``unknown``: neither (interval arithmetic ignores correlations between sub-expressions, so a
  true clause can be unprovable; the counterexample search only tries a finite set of rows).

The search tries, per input, its bounds, midpoint, quartiles and points 1e-3 of the range
inside each bound (ints: every value of small ranges; bools: both; str: lengths), all
combinations up to 32,768 rows, else the bounds/midpoint grid, sampled with a fixed seed when
even that is larger.

Every candidate row is evaluated as a run of its own (its own prompt): a counterexample is a
dataset of one row, and normalisations (``zscore`` / ``rank`` / ``minmax``) take their neutral
value there. Their interval bounds (``intervals.normalize``) hold for any group, so ``proved``
covers every dataset.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rlhf_core.contract import intervals as iv
from rlhf_core.contract.bounds import input_env, reward_bounds
from rlhf_core.contract.legal_blocks.compile_jax import compile_jax
from rlhf_core.contract.legal_blocks.normalize import neutral_program
from rlhf_core.contract.program import ContractProgram, InputDecl

Status = Literal["proved", "refuted", "unknown"]
_MAX_ROWS = 32_768


@dataclass(frozen=True)
class EnsuresResult:
    """Outcome of the static check of one ENSURES clause.

    Attributes:
        label: Clause label.
        status: ``proved``, ``refuted`` or ``unknown``.
        counterexample: For ``refuted``: input values of a violating row.
        reward_bounds: The reward enclosure used (lo, hi).
    """

    label: str
    status: Status
    counterexample: dict[str, Any] | None
    reward_bounds: tuple[float, float]


def _candidates(decl: InputDecl, full: bool) -> list[float]:
    lo = -math.inf if decl.lo is None else float(decl.lo)
    hi = math.inf if decl.hi is None else float(decl.hi)
    if decl.dtype == "bool":
        return [0.0, 1.0]
    if decl.dtype == "str":
        lo, hi = max(lo, 0.0), (hi if math.isfinite(hi) else 64.0)
    if not math.isfinite(lo) and not math.isfinite(hi):
        lo, hi = -1e3, 1e3
    elif not math.isfinite(lo):
        lo = min(hi - 1e3, -1e3)
    elif not math.isfinite(hi):
        hi = max(lo + 1e3, 1e3)
    span = hi - lo
    fractions = (0.0, 1e-3, 0.25, 0.5, 0.75, 1 - 1e-3, 1.0) if full else (0.0, 0.5, 1.0)
    values = [lo + f * span for f in fractions]
    if decl.dtype in ("int", "str"):
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        if full and hi_i - lo_i <= 8:
            values = list(range(lo_i, hi_i + 1))
        else:
            values = [float(min(max(round(v), lo_i), hi_i)) for v in values]
    return list(dict.fromkeys(float(v) for v in values))


def _grid(program: ContractProgram, axes_of: Any = None) -> np.ndarray:
    axes_of = axes_of or _candidates
    for full in (True, False):
        axes = [axes_of(d, full) for d in program.inputs]
        size = math.prod(len(a) for a in axes)
        if size <= _MAX_ROWS:
            return np.asarray(list(itertools.product(*axes)), dtype=np.float64).reshape(size, -1)
    rng = np.random.default_rng(0)
    picks = [rng.integers(0, len(a), _MAX_ROWS) for a in axes]
    return np.stack([np.asarray(a)[p] for a, p in zip(axes, picks, strict=True)], axis=1)


def _columns(program: ContractProgram, grid: np.ndarray) -> dict[str, np.ndarray]:
    cols = {}
    for j, decl in enumerate(program.inputs):
        if decl.dtype == "bool":
            cols[decl.name] = grid[:, j] > 0.5
        elif decl.dtype == "str":
            cols[f"{decl.name}__len"] = grid[:, j].astype(np.float32)
        else:
            cols[decl.name] = grid[:, j].astype(np.float32)
    return cols


def _row_dict(program: ContractProgram, row: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value, decl in zip(row, program.inputs, strict=True):
        if decl.dtype == "bool":
            out[decl.name] = bool(value > 0.5)
        elif decl.dtype == "int":
            out[decl.name] = int(value)
        elif decl.dtype == "str":
            out[decl.name] = "x" * int(value)
        else:
            out[decl.name] = float(np.float32(value))
    return out


def violates(program: ContractProgram, row: dict[str, Any], label: str) -> bool:
    """Evaluate the compiled JAX contract on one row (its own prompt and run); True when the
    clause ``label`` is violated there."""
    grid = np.asarray(
        [[float(len(row[d.name])) if d.dtype == "str" else float(row[d.name])
          for d in program.inputs]]
    )
    compiled = compile_jax(program)
    seg = np.zeros(1, dtype=np.int32)
    out = compiled.fn(_columns(program, grid), seg, 1)
    return bool(np.asarray(out.violations)[0, compiled.clause_labels.index(label)])


def check_ensures(program: ContractProgram) -> tuple[EnsuresResult, ...]:
    """Statically check every ENSURES clause of ``program`` (see module docstring).

    Raises:
        ContractError: The aggregation rule needs bounds the declared ranges do not give.
    """
    clauses = [c for c in program.clauses if c.kind == "ENSURES"]
    if not clauses:
        return ()
    bounds = reward_bounds(program, rounding=True)
    env = {**input_env(program, rounding=True), "reward": bounds}
    verdicts = {c.label: iv.interval_of(c.expr, env, rounding=True) for c in clauses}
    pending = [c for c in clauses if not verdicts[c.label].is_true]
    found: dict[str, dict[str, Any]] = {}
    if pending:
        grid = _grid(program)
        compiled = compile_jax(neutral_program(program))
        seg = np.arange(len(grid), dtype=np.int32)
        out = compiled.fn(_columns(program, grid), seg, len(grid), indices_are_sorted=True)
        violations = np.asarray(out.violations)
        for c in pending:
            hits = np.flatnonzero(violations[:, compiled.clause_labels.index(c.label)])
            for r in hits[:8]:
                row = _row_dict(program, grid[r])
                if violates(program, row, c.label):
                    found[c.label] = row
                    break
    results = []
    for c in clauses:
        if verdicts[c.label].is_true:
            status: Status = "proved"
        else:
            status = "refuted" if c.label in found else "unknown"
        results.append(EnsuresResult(c.label, status, found.get(c.label), (bounds.lo, bounds.hi)))
    return tuple(results)
