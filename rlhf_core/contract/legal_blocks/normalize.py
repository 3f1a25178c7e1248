"""Group-relative normalisations: ``zscore`` / ``rank`` / ``minmax`` ``(x IN prompt | run)``.

Semantics (docs/contracts.md#normalised-signals), identical in the JAX, NumPy and SQL programs:

* The **group** of a row is the candidates sharing its prompt id (``IN prompt``) or every row of
  the run (``IN run``). ``x`` is evaluated on every row of the group (float32).
* Only **finite** values of ``x`` count (NaN, ±inf and SQL NULL are *missing*): ``n`` is the
  number of finite values in the group; mean, standard deviation, min, max and ranks are taken
  over them. A row whose ``x`` is missing gets the **neutral value** (``zscore`` 0, ``rank`` and
  ``minmax`` 0.5), as does every row of a group with ``n <= 1`` or whose finite values are all
  equal. The result is never NaN or infinite.
* ``zscore = (x - mean) / std`` with the **population** standard deviation
  (``sqrt(sum((x - mean)^2) / n)``), clamped to ``[-sqrt(n-1), sqrt(n-1)]`` (the exact value
  never leaves that range; the clamp keeps float rounding inside it).
* ``rank``: ties get their **average rank** ``r`` (1-based), scaled ``(r - 1) / (n - 1)``:
  ``(less + (equal - 1) / 2) / (n - 1)`` where ``less`` counts the group's finite values below
  ``x`` and ``equal`` those equal to it (itself included); ``-0.0 == 0.0``. Always in [0, 1].
* ``minmax = (x - min) / (max - min)``, in [0, 1].

Per-prompt statistics are segment reductions inside the compiled program (the scorer already
passes prompt segment ids for FORALL / EXISTS). Run-wide statistics are computed once per run
from every row's argument values (``RunStats``) and passed into every compiled call, so a run
scored in shards gets exactly the values of the same run scored as one table: the statistics
are computed from the **sorted** finite values, whatever order or sharding the rows came in.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rlhf_core.contract.legal_blocks.ast import (
    Binary,
    Call,
    Clause,
    Compare,
    Expr,
    IfElse,
    Normalize,
    Num,
    Unary,
)
from rlhf_core.contract.legal_blocks.functions import NEUTRAL
from rlhf_core.contract.legal_blocks.printer import format_expr
from rlhf_core.contract.legal_blocks.walk import walk
from rlhf_core.contract.program import ContractProgram, StakeholderProgram
from rlhf_core.errors import ContractError

Array = Any
_FORMAT = "rlhf-wizard.run-stats/1"


def program_expressions(program: ContractProgram) -> list[Expr]:
    """Every utility and clause body of ``program``, in declaration order."""
    return [s.utility for s in program.stakeholders] + [c.expr for c in program.clauses]


def normalizations(program: ContractProgram) -> tuple[Normalize, ...]:
    """Every normalisation node of the program (utilities, then clauses; pre-order)."""
    return tuple(
        node for expr in program_expressions(program) for node in walk(expr)
        if isinstance(node, Normalize)
    )


def needs_prompt_groups(program: ContractProgram) -> bool:
    """Whether scoring needs prompt segments: FORALL / EXISTS or a ``... IN prompt``."""
    return any(c.kind in ("FORALL", "EXISTS") for c in program.clauses) or any(
        n.group == "prompt" for n in normalizations(program)
    )


def run_arguments(program: ContractProgram) -> tuple[Expr, ...]:
    """Distinct arguments of the run-wide normalisations, first-seen order (structural equality:
    ``zscore(x IN run)`` and ``rank(x IN run)`` share one set of run statistics)."""
    seen: dict[Expr, None] = {}
    for node in normalizations(program):
        if node.group == "run":
            seen.setdefault(node.arg, None)
    return tuple(seen)


def needs_run_stats(program: ContractProgram) -> bool:
    """Whether scoring needs statistics of the whole run (some ``... IN run``)."""
    return bool(run_arguments(program))


def run_key(arg: Expr) -> str:
    """Key of a run-wide argument in ``RunStats``: its canonical printed form."""
    return format_expr(arg)


def ranked_run_keys(program: ContractProgram) -> frozenset[str]:
    """Keys of run-wide arguments that some ``rank(... IN run)`` needs the sorted values of."""
    return frozenset(run_key(n.arg) for n in normalizations(program)
                     if n.group == "run" and n.fn == "rank")


# -- run statistics ---------------------------------------------------------------------------


def _bucket(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


@dataclass(frozen=True)
class ArgStats:
    """Statistics of one run-wide argument over the finite values of the whole run.

    Attributes:
        count: Number of finite values ``n``.
        shift: Power-of-two exponent ``e`` with ``|x| * 2**-e < 1`` for every value (the
            z-score is computed on ``x * 2**-e``, which cannot overflow float32).
        mean: Mean of the scaled values (float64, computed from the sorted values).
        std: Population standard deviation of the scaled values (float64).
        lo: Smallest finite value (0.0 when ``count == 0``).
        hi: Largest finite value.
        sorted_values: The sorted finite float32 values (kept for ``rank`` only, else None).
    """

    count: int
    shift: int
    mean: float
    std: float
    lo: float
    hi: float
    sorted_values: np.ndarray | None = None

    @classmethod
    def from_values(cls, values: np.ndarray, keep_sorted: bool) -> ArgStats:
        """Statistics of ``values`` (any order; non-finite values are dropped)."""
        x = np.asarray(values, dtype=np.float32).ravel()
        x = np.sort(x[np.isfinite(x)])
        x = np.where(x == 0, np.float32(0.0), x)  # -0.0 == 0.0: one representation
        n = int(x.size)
        if n == 0:
            return cls(0, 0, 0.0, 0.0, 0.0, 0.0, x if keep_sorted else None)
        lo, hi = float(x[0]), float(x[-1])
        shift = math.frexp(max(abs(lo), abs(hi)))[1]
        scaled = np.ldexp(x.astype(np.float64), -shift)
        mean = float(np.sum(scaled) / n)
        std = float(math.sqrt(float(np.sum((scaled - mean) ** 2)) / n))
        return cls(n, shift, mean, std, lo, hi, x if keep_sorted else None)

    def jax_args(self) -> dict[str, np.ndarray]:
        """Arrays passed into the compiled program (sorted values padded with +inf to a power
        of two, so runs of similar size share one compilation)."""
        sorted_values = self.sorted_values if self.sorted_values is not None else np.zeros(0)
        padded = np.full(_bucket(max(int(sorted_values.size), 1)), np.inf, dtype=np.float32)
        padded[: sorted_values.size] = sorted_values
        return {
            "count": np.int32(self.count),
            "shift": np.int32(self.shift),
            "mean": np.float32(self.mean),
            "std": np.float32(self.std),
            "lo": np.float32(self.lo),
            "hi": np.float32(self.hi),
            "sorted": padded,
        }


@dataclass(frozen=True)
class RunStats:
    """Run-wide statistics of every ``... IN run`` argument of one program, by ``run_key``.

    Build with :meth:`from_values` (argument values of every row of the run, evaluated by the
    compiled program: ``compile_jax.run_argument_values``); ``to_bytes`` / ``from_bytes`` carry
    them from the pre-pass to every scoring shard.
    """

    stats: Mapping[str, ArgStats]

    @classmethod
    def from_values(
        cls, program: ContractProgram, values: Mapping[str, Sequence[np.ndarray] | np.ndarray]
    ) -> RunStats:
        """Statistics from each key's argument values (one array, or the arrays of every part).

        Raises:
            ContractError: A run-wide argument of ``program`` has no values.
        """
        ranked = ranked_run_keys(program)
        out: dict[str, ArgStats] = {}
        for arg in run_arguments(program):
            key = run_key(arg)
            if key not in values:
                raise ContractError(f"run statistics of {program.name!r} lack {key!r}")
            parts = values[key]
            if isinstance(parts, list | tuple):
                parts = [np.asarray(p, np.float32).ravel() for p in parts]
                array = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            else:
                array = np.asarray(parts, np.float32).ravel()
            out[key] = ArgStats.from_values(array, key in ranked)
        return cls(out)

    def check_program(self, program: ContractProgram) -> None:
        """Raise ContractError unless every run-wide argument of ``program`` has statistics."""
        missing = [run_key(a) for a in run_arguments(program) if run_key(a) not in self.stats]
        if missing:
            raise ContractError(
                f"run statistics do not cover {missing[0]!r} of contract {program.name!r}; "
                "recompute them for this contract"
            )
        for key in ranked_run_keys(program):
            if self.stats[key].sorted_values is None:
                raise ContractError(f"run statistics of {key!r} lack the sorted values rank needs")

    def jax_args(self, program: ContractProgram) -> tuple[dict[str, np.ndarray], ...]:
        """The pytree passed into the compiled program, one entry per ``run_arguments``."""
        self.check_program(program)
        return tuple(self.stats[run_key(a)].jax_args() for a in run_arguments(program))

    def to_bytes(self, contract_hash: str = "") -> bytes:
        """Portable ``.npz`` bytes (no pickles); ``contract_hash`` is recorded for checking."""
        meta = {"format": _FORMAT, "contract_hash": contract_hash, "keys": []}
        arrays: dict[str, np.ndarray] = {}
        for i, (key, st) in enumerate(self.stats.items()):
            meta["keys"].append({"key": key, "count": st.count, "shift": st.shift,
                                 "mean": st.mean, "std": st.std, "lo": st.lo, "hi": st.hi,
                                 "sorted": st.sorted_values is not None})
            if st.sorted_values is not None:
                arrays[f"sorted_{i}"] = st.sorted_values
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, contract_hash: str | None = None) -> RunStats:
        """Read :meth:`to_bytes` output.

        Raises:
            ContractError: Not run statistics, or computed for another contract.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(bytes(npz["meta"]).decode())
                arrays = {k: npz[k] for k in npz.files if k != "meta"}
        except (OSError, ValueError, KeyError) as exc:
            raise ContractError(f"unreadable run statistics: {exc}") from exc
        if meta.get("format") != _FORMAT:
            raise ContractError(f"not run statistics (format {meta.get('format')!r})")
        if contract_hash is not None and meta.get("contract_hash") != contract_hash:
            raise ContractError(
                f"run statistics were computed for contract {meta.get('contract_hash')}, not "
                f"{contract_hash}; recompute them"
            )
        stats = {}
        for i, item in enumerate(meta["keys"]):
            values = arrays.get(f"sorted_{i}") if item["sorted"] else None
            stats[item["key"]] = ArgStats(int(item["count"]), int(item["shift"]),
                                          float(item["mean"]), float(item["std"]),
                                          float(item["lo"]), float(item["hi"]),
                                          None if values is None else values.astype(np.float32))
        return cls(stats)


# -- array semantics (shared by JAX and NumPy) ------------------------------------------------


class GroupOps:
    """Segment reductions and sorting for one array namespace (see ``jax_group_ops`` and
    ``numpy_group_ops``)."""

    def __init__(self, xp: Any, seg_sum: Any, seg_min: Any, seg_max: Any, lexsort: Any,
                 cummax: Any, rcummin: Any, unpermute: Any, divide: Any = None) -> None:
        self.xp = xp
        self.seg_sum = seg_sum
        self.seg_min = seg_min
        self.seg_max = seg_max
        self.lexsort = lexsort
        self.cummax = cummax
        self.rcummin = rcummin
        self.unpermute = unpermute
        # IEEE division (XLA turns a division by a scalar into a multiplication by its
        # reciprocal: not correctly rounded, and 0 when the reciprocal is subnormal).
        self.divide = divide or (lambda a, b: a / b)


def _f32(xp: Any, x: Any) -> Any:
    return xp.asarray(x).astype(np.float32)


def _zscore(ops: GroupOps, w: Array, mean: Array, std: Array, count: Array, lo: Array,
            hi: Array, valid: Array) -> Array:
    """Clamped population z-score of scaled values ``w`` given the group's statistics."""
    xp = ops.xp
    z = ops.divide(w - mean, std)
    bound = xp.sqrt(_f32(xp, xp.maximum(count - 1, 0)))
    z = xp.minimum(xp.maximum(z, -bound), bound)
    ok = valid & (count > 1) & (hi > lo) & (std > 0) & xp.isfinite(std)
    return xp.where(ok, z, np.float32(0.0)).astype(np.float32)


def _minmax(ops: GroupOps, w: Array, wlo: Array, whi: Array, valid: Array) -> Array:
    """``(w - wlo) / (whi - wlo)`` in [0, 1] on values scaled by a power of two (|w| < 1, so
    the span cannot overflow float32)."""
    xp = ops.xp
    out = ops.divide(w - wlo, whi - wlo)
    out = xp.minimum(xp.maximum(out, np.float32(0.0)), np.float32(1.0))
    return xp.where(valid & (whi > wlo), out, np.float32(0.5)).astype(np.float32)


def _rank(ops: GroupOps, less: Array, equal: Array, count: Array, valid: Array) -> Array:
    """``(less + (equal - 1) / 2) / (count - 1)`` in [0, 1] (average rank of ties)."""
    xp = ops.xp
    num = _f32(xp, less) + (_f32(xp, equal) - np.float32(1.0)) * np.float32(0.5)
    r = ops.divide(num, _f32(xp, xp.maximum(count - 1, 1)))
    r = xp.minimum(xp.maximum(r, np.float32(0.0)), np.float32(1.0))
    return xp.where(valid & (count > 1), r, np.float32(0.5)).astype(np.float32)


def _scaled(xp: Any, x: Array, shift: Array) -> Array:
    return xp.ldexp(x, -shift).astype(np.float32)


def prompt_normalize(ops: GroupOps, fn: str, v: Array, seg: Array, num_segments: int) -> Array:
    """``fn(v IN prompt)`` for rows with dense prompt ids ``seg`` (float32 ``v``, shape [n])."""
    xp = ops.xp
    valid = xp.isfinite(v)
    v = xp.where(valid & (v != 0), v, np.float32(0.0)).astype(np.float32)
    count = ops.seg_sum(valid.astype(np.int32), seg, num_segments)[seg]
    if fn == "rank":
        n = v.shape[0]
        idx = xp.arange(n, dtype=np.int32)
        order = ops.lexsort((v, xp.logical_not(valid).astype(np.int32), seg))
        s_seg, s_v, s_valid = seg[order], v[order], valid[order]
        first = idx == 0
        new_seg = first | xp.concatenate([first[:1], s_seg[1:] != s_seg[:-1]])
        new_run = new_seg | xp.concatenate([first[:1], (s_v[1:] != s_v[:-1])
                                            | (s_valid[1:] != s_valid[:-1])])
        seg_start = ops.cummax(xp.where(new_seg, idx, 0))
        run_start = ops.cummax(xp.where(new_run, idx, 0))
        last_in_run = xp.concatenate([new_run[1:], xp.ones((1,), dtype=bool)]) if n else new_run
        run_end = ops.rcummin(xp.where(last_in_run, idx, n))
        less = ops.unpermute(order, run_start - seg_start)
        equal = ops.unpermute(order, run_end - run_start + 1)
        return _rank(ops, less, equal, count, valid)
    lo = ops.seg_min(xp.where(valid, v, np.float32(np.inf)), seg, num_segments)[seg]
    hi = ops.seg_max(xp.where(valid, v, np.float32(-np.inf)), seg, num_segments)[seg]
    top = ops.seg_max(xp.where(valid, xp.abs(v), np.float32(0.0)), seg, num_segments)
    shift = xp.frexp(top)[1].astype(np.int32)[seg]
    w = xp.where(valid, _scaled(xp, v, shift), np.float32(0.0)).astype(np.float32)
    if fn == "minmax":
        return _minmax(ops, w, _scaled(xp, lo, shift), _scaled(xp, hi, shift), valid)
    safe = _f32(xp, xp.maximum(count, 1))
    mean = ops.divide(ops.seg_sum(w, seg, num_segments)[seg], safe).astype(np.float32)
    d = xp.where(valid, w - mean, np.float32(0.0))
    var = ops.divide(ops.seg_sum(d * d, seg, num_segments)[seg], safe)
    std = xp.sqrt(var).astype(np.float32)
    return _zscore(ops, w, mean, std, count, lo, hi, valid)


def run_normalize(ops: GroupOps, fn: str, v: Array, stats: Mapping[str, Array]) -> Array:
    """``fn(v IN run)`` from the run's statistics (``ArgStats.jax_args``)."""
    xp = ops.xp
    valid = xp.isfinite(v)
    v = xp.where(valid & (v != 0), v, np.float32(0.0)).astype(np.float32)
    count = stats["count"]
    if fn == "rank":
        s = stats["sorted"]
        left = xp.searchsorted(s, v, side="left")
        right = xp.searchsorted(s, v, side="right")
        return _rank(ops, left, right - left, count, valid)
    lo, hi, shift = stats["lo"], stats["hi"], stats["shift"]
    w = _scaled(xp, v, shift)
    if fn == "minmax":
        return _minmax(ops, w, _scaled(xp, lo, shift), _scaled(xp, hi, shift), valid)
    return _zscore(ops, w, stats["mean"], stats["std"], count, lo, hi, valid)


def numpy_group_ops() -> GroupOps:
    """``GroupOps`` over NumPy (any segment order)."""

    def seg_reduce(ufunc: Any, fill: float) -> Any:
        def reduce(x: np.ndarray, seg: np.ndarray, num: int) -> np.ndarray:
            out = np.full(num, fill, dtype=x.dtype)
            ufunc.at(out, seg, x)
            return out
        return reduce

    def unpermute(order: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[order] = values
        return out

    return GroupOps(
        np, seg_reduce(np.add, 0), seg_reduce(np.minimum, np.inf),
        seg_reduce(np.maximum, -np.inf), np.lexsort, np.maximum.accumulate,
        lambda x: np.minimum.accumulate(x[::-1])[::-1], unpermute,
    )


# -- program transformations ------------------------------------------------------------------


def _neutral(e: Expr) -> Expr:
    """``e`` with every normalisation replaced by its neutral value (a group of one row)."""
    if isinstance(e, Normalize):
        return Num(NEUTRAL[e.fn], pos=e.pos)
    if isinstance(e, Unary):
        return replace(e, operand=_neutral(e.operand))
    if isinstance(e, Binary):
        return replace(e, left=_neutral(e.left), right=_neutral(e.right))
    if isinstance(e, Compare):
        return replace(e, operands=tuple(_neutral(o) for o in e.operands))
    if isinstance(e, Call):
        return replace(e, args=tuple(_neutral(a) for a in e.args))
    if isinstance(e, IfElse):
        return replace(e, cond=_neutral(e.cond), then=_neutral(e.then), orelse=_neutral(e.orelse))
    return e


def neutral_expr(e: Expr) -> Expr:
    """``e`` as evaluated on a run of one row: every normalisation is its neutral value."""
    if not any(isinstance(n, Normalize) for n in walk(e)):
        return e
    return _neutral(e)


def neutral_program(program: ContractProgram) -> ContractProgram:
    """``program`` as it scores a row that is alone in its prompt and its run (the static
    check evaluates such rows in bulk)."""
    if not normalizations(program):
        return program
    holders = tuple(
        StakeholderProgram(s.name, s.weight, neutral_expr(s.utility), s.disagreement)
        for s in program.stakeholders
    )
    clauses = tuple(
        Clause(c.label, c.kind, neutral_expr(c.expr), c.penalty, c.severity, c.var, pos=c.pos)
        for c in program.clauses
    )
    return replace(program, stakeholders=holders, clauses=clauses)
