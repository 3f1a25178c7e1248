"""Compile a checked ContractProgram into ONE jitted JAX function (plus a NumPy twin).

``compile_jax(program).fn(columns, segment_ids, num_segments)`` returns ``ContractOutputs``
(see ``lower_array`` for the semantics). Everything is float32. FORALL / EXISTS are segment
reductions (``jax.ops.segment_min`` / ``segment_max`` over dense prompt indices) gathered back to
rows; a program without quantifiers takes the fast path and ignores the segment arguments.

Numeric literals of the contract travel into the compiled function as a small runtime float32
vector rather than as compile-time constants, and a division by a scalar (other than a literal
power of two) divides by a materialised array: XLA rewrites ``x / c`` into ``x * (1/c)``, which
is not the IEEE quotient, and the DuckDB program (which divides exactly) must agree with this
one on every comparison. Products with the derived aggregation constants
(weights, ideal points) may be contracted into FMAs by XLA; the resulting last-bit differences
stay within the 1e-4 relative tolerance documented for rewards.

``evaluate_numpy`` runs the same lowering eagerly with NumPy (the benchmark baseline).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlhf_core.contract.aggregation import AggregationParams
from rlhf_core.contract.bounds import aggregation_params
from rlhf_core.contract.legal_blocks.lower_array import (
    ContractOutputs,
    Lowering,
    evaluate_program,
    literal_values,
)
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import SchemaMismatchError


def input_columns(program: ContractProgram) -> tuple[str, ...]:
    """Names of the columns the compiled function reads (``<s>__len`` for str inputs)."""
    return tuple(
        f"{d.name}__len" if d.dtype == "str" else d.name for d in program.inputs
    )


def has_quantifiers(program: ContractProgram) -> bool:
    """Whether any clause is a FORALL / EXISTS over the prompt."""
    return any(c.kind in ("FORALL", "EXISTS") for c in program.clauses)


def _prepare(program: ContractProgram, columns: Mapping[str, Any], xp: Any) -> dict[str, Any]:
    missing = [c for c in input_columns(program) if c not in columns]
    if missing:
        raise SchemaMismatchError(
            f"contract {program.name!r}: input column {missing[0]!r} is missing from the batch; "
            f"provide all of {list(input_columns(program))}"
        )
    cols = {}
    for decl, name in zip(program.inputs, input_columns(program), strict=True):
        dtype = bool if decl.dtype == "bool" else np.float32
        cols[name] = xp.asarray(columns[name]).astype(dtype)
    return cols


def _rows(program: ContractProgram, cols: Mapping[str, Any]) -> int:
    return int(next(iter(cols.values())).shape[0]) if cols else 0


@dataclass(frozen=True)
class CompiledContract:
    """A contract compiled to JAX.

    Attributes:
        program: The source program.
        params: Aggregation parameters derived from the declared ranges.
        stakeholders: Stakeholder names (columns of ``utilities``).
        clause_labels: Clause labels (columns of ``violations``).
        needs_segments: True when the program has FORALL / EXISTS clauses.
        consts: float32 vector of the program's numeric literals.
        jitted: The jitted implementation ``(columns, consts, segment_ids, num_segments,
            indices_are_sorted)``.
    """

    program: ContractProgram
    params: AggregationParams
    stakeholders: tuple[str, ...]
    clause_labels: tuple[str, ...]
    needs_segments: bool
    consts: jax.Array = field(repr=False)
    jitted: Callable[..., ContractOutputs] = field(repr=False)

    def fn(
        self,
        columns: Mapping[str, jax.Array],
        segment_ids: jax.Array | None = None,
        num_segments: int | None = None,
        indices_are_sorted: bool = False,
    ) -> ContractOutputs:
        """Score a batch.

        Args:
            columns: One array [n] per input column (``<s>__len`` for str inputs).
            segment_ids: int32 [n] dense prompt index per row (quantifier programs only).
            num_segments: Static number of segments (> max segment id).
            indices_are_sorted: Rows are grouped by ascending segment id.

        Returns:
            ContractOutputs of jax arrays.

        Raises:
            SchemaMismatchError: A column is missing, or segments are missing for a program
                with quantifiers.
        """
        if self.needs_segments and (segment_ids is None or num_segments is None):
            raise SchemaMismatchError(
                f"contract {self.program.name!r} has FORALL/EXISTS clauses: pass segment_ids "
                f"(dense index of {self.program.group_column!r}) and num_segments"
            )
        if not self.needs_segments:
            segment_ids, num_segments, indices_are_sorted = None, None, False
        return self.jitted(
            dict(columns), self.consts, segment_ids, num_segments, indices_are_sorted
        )

    __call__ = fn


def _ieee_divide(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a / b`` as the IEEE quotient: XLA:CPU turns a division by a broadcast scalar into a
    multiplication by its reciprocal (off by an ulp), so a scalar divisor is materialised
    behind an optimisation barrier first."""
    if jnp.ndim(b) == 0 and jnp.ndim(a) > 0:
        b = jax.lax.optimization_barrier(jnp.broadcast_to(b, jnp.shape(a)))
    return a / b


@functools.lru_cache(maxsize=128)
def compile_jax(program: ContractProgram) -> CompiledContract:
    """Compile ``program`` once (cached per program; programs are frozen and hashable).

    Raises:
        ContractError: The aggregation rule needs bounds the declared ranges do not give.
    """
    params = aggregation_params(program)
    literals = literal_values(program)
    index = {value: i for i, value in enumerate(literals)}

    def impl(
        columns: dict[str, jax.Array],
        consts: jax.Array,
        segment_ids: jax.Array | None,
        num_segments: int | None,
        indices_are_sorted: bool,
    ) -> ContractOutputs:
        cols = _prepare(program, columns, jnp)
        lowering = Lowering(jnp, lambda v: consts[index[v]], jax.nn.sigmoid, _ieee_divide)

        def quantifier(kind: str, body: jax.Array) -> jax.Array:
            reduce = jax.ops.segment_max if kind == "EXISTS" else jax.ops.segment_min
            per_prompt = reduce(
                body.astype(jnp.int8),
                segment_ids,
                num_segments=num_segments,
                indices_are_sorted=indices_are_sorted,
            )
            return per_prompt[segment_ids] > 0

        return evaluate_program(
            program, params, cols, _rows(program, cols), lowering,
            quantifier if segment_ids is not None else None,
        )

    return CompiledContract(
        program=program,
        params=params,
        stakeholders=tuple(s.name for s in program.stakeholders),
        clause_labels=tuple(c.label for c in program.clauses),
        needs_segments=has_quantifiers(program),
        consts=jnp.asarray(np.asarray(literals or (0.0,), dtype=np.float32)),
        jitted=jax.jit(impl, static_argnames=("num_segments", "indices_are_sorted")),
    )


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    one = np.float32(1.0)
    return one / (one + np.exp(-x))


def evaluate_numpy(
    program: ContractProgram,
    columns: Mapping[str, np.ndarray],
    segment_ids: np.ndarray | None = None,
) -> ContractOutputs:
    """Evaluate ``program`` eagerly with NumPy (same lowering; the benchmark baseline).

    ``segment_ids`` must be sorted ascending (rows grouped by prompt) for quantifier programs.
    """
    params = compile_jax(program).params
    cols = _prepare(program, columns, np)

    def quantifier(kind: str, body: np.ndarray) -> np.ndarray:
        starts = np.flatnonzero(np.r_[True, segment_ids[1:] != segment_ids[:-1]])
        reduce = np.maximum if kind == "EXISTS" else np.minimum
        per_prompt = reduce.reduceat(body, starts)
        lengths = np.diff(np.r_[starts, len(body)])
        return np.repeat(per_prompt, lengths)

    lowering = Lowering(np, np.float32, _np_sigmoid)
    with np.errstate(all="ignore"):
        return evaluate_program(
            program, params, cols, _rows(program, cols), lowering,
            quantifier if segment_ids is not None else None,
        )
