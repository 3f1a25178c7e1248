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

``zscore`` / ``rank`` / ``minmax`` ``(x IN prompt)`` are segment reductions over the same prompt
segments (``rank`` sorts by (prompt, value)); ``(x IN run)`` reads run statistics passed in as
arrays (``RunStats.jax_args``): computed once per run by ``compute_run_stats`` from the argument
values that ``run_argument_values`` evaluates with a second jitted function sharing the lowering.
Programs without normalisations compile exactly as before.

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
from rlhf_core.contract.legal_blocks.ast import Normalize
from rlhf_core.contract.legal_blocks.lower_array import (
    ContractOutputs,
    Lowering,
    evaluate_program,
    literal_values,
)
from rlhf_core.contract.legal_blocks.normalize import (
    GroupOps,
    RunStats,
    needs_prompt_groups,
    numpy_group_ops,
    prompt_normalize,
    run_arguments,
    run_key,
    run_normalize,
)
from rlhf_core.contract.legal_blocks.walk import columns as expr_columns
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


def run_input_columns(program: ContractProgram) -> tuple[str, ...]:
    """Declared inputs read by the arguments of ``... IN run`` (what a run-statistics pre-pass
    must read of every part)."""
    used: set[str] = set()
    for arg in run_arguments(program):
        used |= expr_columns(arg)
    return tuple(d.name for d in program.inputs if d.name in used)


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
        needs_segments: True when the program has FORALL / EXISTS clauses or ``... IN prompt``
            normalisations.
        needs_run_stats: True when the program has ``... IN run`` normalisations.
        consts: float32 vector of the program's numeric literals.
        jitted: The jitted implementation ``(columns, consts, segment_ids, num_segments,
            indices_are_sorted, run_stats, extra_veto)``.
        run_jitted: Jitted evaluation of the ``... IN run`` arguments ``(columns, consts)``
            (None when there are none).
    """

    program: ContractProgram
    params: AggregationParams
    stakeholders: tuple[str, ...]
    clause_labels: tuple[str, ...]
    needs_segments: bool
    consts: jax.Array = field(repr=False)
    jitted: Callable[..., ContractOutputs] = field(repr=False)
    needs_run_stats: bool = False
    run_jitted: Callable[..., tuple[jax.Array, ...]] | None = field(default=None, repr=False)

    def fn(
        self,
        columns: Mapping[str, jax.Array],
        segment_ids: jax.Array | None = None,
        num_segments: int | None = None,
        indices_are_sorted: bool = False,
        run_stats: RunStats | None = None,
        veto: jax.Array | None = None,
    ) -> ContractOutputs:
        """Score a batch.

        Args:
            columns: One array [n] per input column (``<s>__len`` for str inputs).
            segment_ids: int32 [n] dense prompt index per row (programs with quantifiers or
                ``... IN prompt`` only).
            num_segments: Static number of segments (> max segment id).
            indices_are_sorted: Rows are grouped by ascending segment id.
            run_stats: Statistics of the whole run for ``... IN run`` (default: the batch is
                the whole run and they are computed from ``columns``).
            veto: Optional bool [n]: rows vetoed whatever the clauses say (the ingest's
                ``null_veto`` flag); ORed into ``veto`` before the floor reward.

        Returns:
            ContractOutputs of jax arrays.

        Raises:
            SchemaMismatchError: A column is missing, or segments are missing for a program
                that needs them.
        """
        if self.needs_segments and (segment_ids is None or num_segments is None):
            raise SchemaMismatchError(
                f"contract {self.program.name!r} has FORALL/EXISTS clauses or '... IN prompt' "
                f"normalisations: pass segment_ids (dense index of "
                f"{self.program.group_column!r}) and num_segments"
            )
        if not self.needs_segments:
            segment_ids, num_segments, indices_are_sorted = None, None, False
        stats = None
        if self.needs_run_stats:
            if run_stats is None:
                run_stats = compute_run_stats(self.program, columns)
            stats = run_stats.jax_args(self.program)
        return self.jitted(
            dict(columns), self.consts, segment_ids, num_segments, indices_are_sorted, stats, veto
        )

    __call__ = fn

    def run_arguments(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Values of every ``... IN run`` argument on the rows of ``columns``, by
        ``run_key`` (float32 numpy arrays; empty when the program has none)."""
        if self.run_jitted is None:
            return {}
        values = self.run_jitted(dict(columns), self.consts)
        keys = [run_key(a) for a in run_arguments(self.program)]
        return {k: np.asarray(v) for k, v in zip(keys, values, strict=True)}


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
    run_args = run_arguments(program)
    run_index = {arg: i for i, arg in enumerate(run_args)}

    def impl(
        columns: dict[str, jax.Array],
        consts: jax.Array,
        segment_ids: jax.Array | None,
        num_segments: int | None,
        indices_are_sorted: bool,
        run_stats: tuple[dict[str, jax.Array], ...] | None,
        extra_veto: jax.Array | None = None,
    ) -> ContractOutputs:
        cols = _prepare(program, columns, jnp)
        n = _rows(program, cols)
        ops = _jax_group_ops(indices_are_sorted)

        def normalize(node: Normalize, x: jax.Array) -> jax.Array:
            v = jnp.broadcast_to(jnp.asarray(x, jnp.float32), (n,))
            if node.group == "prompt":
                return prompt_normalize(ops, node.fn, v, segment_ids, num_segments)
            # The barrier keeps the argument's bits those of ``run_jitted`` (no fusion with
            # what consumes it), so a row finds its own value among the run's sorted values.
            v = jax.lax.optimization_barrier(v)
            return run_normalize(ops, node.fn, v, run_stats[run_index[node.arg]])

        lowering = Lowering(jnp, lambda v: consts[index[v]], jax.nn.sigmoid, _ieee_divide,
                            normalize)

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
            program, params, cols, n, lowering,
            quantifier if segment_ids is not None else None, extra_veto,
        )

    def impl_run_args(columns: dict[str, jax.Array], consts: jax.Array) -> tuple[jax.Array, ...]:
        cols = _prepare(program, columns, jnp)
        n = _rows(program, cols)
        lowering = Lowering(jnp, lambda v: consts[index[v]], jax.nn.sigmoid, _ieee_divide)
        return tuple(
            jax.lax.optimization_barrier(
                jnp.broadcast_to(jnp.asarray(lowering.expr(arg, cols), jnp.float32), (n,))
            )
            for arg in run_args
        )

    return CompiledContract(
        program=program,
        params=params,
        stakeholders=tuple(s.name for s in program.stakeholders),
        clause_labels=tuple(c.label for c in program.clauses),
        needs_segments=needs_prompt_groups(program),
        consts=jnp.asarray(np.asarray(literals or (0.0,), dtype=np.float32)),
        jitted=jax.jit(impl, static_argnames=("num_segments", "indices_are_sorted")),
        needs_run_stats=bool(run_args),
        run_jitted=jax.jit(impl_run_args) if run_args else None,
    )


def _jax_group_ops(indices_are_sorted: bool) -> GroupOps:
    def seg(reduce: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        def apply(x: jax.Array, ids: jax.Array, num: int) -> jax.Array:
            return reduce(x, ids, num_segments=num, indices_are_sorted=indices_are_sorted)
        return apply

    return GroupOps(
        jnp, seg(jax.ops.segment_sum), seg(jax.ops.segment_min), seg(jax.ops.segment_max),
        jnp.lexsort, lambda x: jax.lax.cummax(x, axis=0),
        lambda x: jax.lax.cummin(x, axis=0, reverse=True),
        lambda order, values: jnp.zeros_like(values).at[order].set(values),
        _ieee_divide,
    )


_RUN_CHUNK = 1 << 20


def run_argument_values(
    program: ContractProgram, columns: Mapping[str, Any], chunk_rows: int = _RUN_CHUNK
) -> dict[str, np.ndarray]:
    """Every ``... IN run`` argument evaluated on the rows of ``columns`` by the compiled
    program (float32, by ``run_key``), in chunks padded to powers of two like ``score_table``."""
    compiled = compile_jax(program)
    if compiled.run_jitted is None:
        return {}
    arrays = {k: np.asarray(v) for k, v in columns.items()}
    n = len(next(iter(arrays.values()))) if arrays else 0
    parts: dict[str, list[np.ndarray]] = {run_key(a): [] for a in run_arguments(program)}
    for begin in range(0, n, chunk_rows):
        size = min(chunk_rows, n - begin)
        padded = max(1024, 1 << max(size - 1, 0).bit_length())
        chunk = {k: v[begin:begin + size] for k, v in arrays.items()}
        if padded != size:
            chunk = {k: np.resize(v, padded) for k, v in chunk.items()}
        for key, values in compiled.run_arguments(chunk).items():
            parts[key].append(values[:size])
    return {k: (np.concatenate(v) if v else np.zeros(0, np.float32)) for k, v in parts.items()}


def compute_run_stats(program: ContractProgram, columns: Mapping[str, Any]) -> RunStats:
    """Run statistics when ``columns`` (prepared inputs, as ``input_columns``) hold the whole
    run. For a run in parts, collect ``run_argument_values`` of every part and call
    ``RunStats.from_values`` with the lists."""
    return RunStats.from_values(program, run_argument_values(program, columns))


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    one = np.float32(1.0)
    return one / (one + np.exp(-x))


def evaluate_numpy(
    program: ContractProgram,
    columns: Mapping[str, np.ndarray],
    segment_ids: np.ndarray | None = None,
    run_stats: RunStats | None = None,
) -> ContractOutputs:
    """Evaluate ``program`` eagerly with NumPy (same lowering; the benchmark baseline).

    ``segment_ids`` must be sorted ascending (rows grouped by prompt) for quantifier programs.
    ``run_stats`` defaults to statistics of ``columns`` (the batch is the run).
    """
    params = compile_jax(program).params
    cols = _prepare(program, columns, np)
    n = _rows(program, cols)
    ops = numpy_group_ops()
    run_args = run_arguments(program)

    def quantifier(kind: str, body: np.ndarray) -> np.ndarray:
        starts = np.flatnonzero(np.r_[True, segment_ids[1:] != segment_ids[:-1]])
        reduce = np.maximum if kind == "EXISTS" else np.minimum
        per_prompt = reduce.reduceat(body, starts)
        lengths = np.diff(np.r_[starts, len(body)])
        return np.repeat(per_prompt, lengths)

    plain = Lowering(np, np.float32, _np_sigmoid)
    if run_args and run_stats is None:
        with np.errstate(all="ignore"):
            values = {run_key(a): np.broadcast_to(np.asarray(plain.expr(a, cols), np.float32), (n,))
                      for a in run_args}
        run_stats = RunStats.from_values(program, values)
    stats = run_stats.jax_args(program) if run_args and run_stats is not None else ()
    run_index = {arg: i for i, arg in enumerate(run_args)}

    def normalize(node: Normalize, x: np.ndarray) -> np.ndarray:
        v = np.broadcast_to(np.asarray(x, np.float32), (n,))
        if node.group == "prompt":
            if segment_ids is None:
                raise SchemaMismatchError(f"contract {program.name!r}: '... IN prompt' needs "
                                          "segment_ids")
            seg = np.asarray(segment_ids)
            return prompt_normalize(ops, node.fn, v, seg, int(seg.max()) + 1 if n else 0)
        return run_normalize(ops, node.fn, v, stats[run_index[node.arg]])

    lowering = Lowering(np, np.float32, _np_sigmoid, normalize=normalize)
    with np.errstate(all="ignore"):
        return evaluate_program(
            program, params, cols, n, lowering,
            quantifier if segment_ids is not None else None,
        )
