"""Program-level bounds: input boxes, utility bounds, aggregation parameters, reward bounds.

Builds on ``intervals``: the declared input ranges form a box; each stakeholder's utility gets
an enclosure ``[lo_i, hi_i]`` over that box; the aggregation parameters that depend on those
bounds (Nash disagreement defaults ``d_i = lo_i``, Tchebycheff ideal points ``z_i = hi_i``,
lexicographic ε-coefficients) are derived here once, in exact arithmetic, and shared by every
compiler; ``reward_bounds`` encloses the final reward of a row (rule, penalties, veto and floor).
"""

from __future__ import annotations

import math

from rlhf_core.contract import intervals as iv
from rlhf_core.contract.aggregation import AggregationParams, lex_coefficients
from rlhf_core.contract.intervals import Interval
from rlhf_core.contract.program import ContractProgram
from rlhf_core.errors import ContractError


def input_env(program: ContractProgram, rounding: bool = False) -> dict[str, Interval]:
    """Interval per input name (``<s>__len`` for str inputs) from the declared ranges, plus the
    group sizes normalisations are bounded by (``__n_prompt``: ``[1, max_candidates]`` when
    declared; ``__n_run`` and undeclared prompt sizes: ``[1, 2**63]``)."""
    env: dict[str, Interval] = {
        iv.GROUP_SIZE_KEYS["prompt"]: (
            iv.UNKNOWN_GROUP_SIZE if program.max_candidates is None
            else Interval(1.0, float(program.max_candidates))
        ),
        iv.GROUP_SIZE_KEYS["run"]: iv.UNKNOWN_GROUP_SIZE,
    }
    for decl in program.inputs:
        lo = -math.inf if decl.lo is None else float(decl.lo)
        hi = math.inf if decl.hi is None else float(decl.hi)
        if decl.dtype == "bool":
            env[decl.name] = iv.UNKNOWN
        elif decl.dtype == "str":
            env[f"{decl.name}__len"] = Interval(max(lo, 0.0), hi)
        else:
            box = Interval(lo, hi)
            if rounding:
                box = iv.hull(box, iv._f32_hull(lo), iv._f32_hull(hi))
            env[decl.name] = box
    return env


def utility_bounds(program: ContractProgram, rounding: bool = False) -> tuple[Interval, ...]:
    """Enclosure ``[lo_i, hi_i]`` of each stakeholder's utility over the declared box."""
    env = input_env(program, rounding)
    return tuple(iv.interval_of(s.utility, env, rounding) for s in program.stakeholders)


def lex_order_indices(program: ContractProgram) -> tuple[int, ...]:
    """Stakeholder indices in lexicographic priority (declaration order by default)."""
    names = [s.name for s in program.stakeholders]
    if not program.lex_order:
        return tuple(range(len(names)))
    unknown = [n for n in program.lex_order if n not in names]
    if unknown:
        raise ContractError(
            f"contract {program.name!r}: lexicographic order names unknown stakeholder "
            f"{unknown[0]!r}; use one of {names}"
        )
    return tuple(names.index(n) for n in program.lex_order)


def _finite(
    program: ContractProgram, pairs: list[tuple[object, Interval]], side: str, why: str
) -> None:
    for s, b in pairs:
        value = b.lo if side == "lower" else b.hi
        if not math.isfinite(value) or b.nan:
            raise ContractError(
                f"contract {program.name!r}, stakeholder {getattr(s, 'name', s)!r}: utility has no finite "
                f"{side} bound over the declared input ranges; {why}"
            )


def aggregation_params(program: ContractProgram) -> AggregationParams:
    """Derive the aggregation parameters of ``program`` (exact arithmetic).

    Raises:
        ContractError: The rule needs a bound that the declared ranges do not give.
    """
    bounds = utility_bounds(program)
    rule = program.rule
    disagreement = []
    for s, b in zip(program.stakeholders, bounds, strict=True):
        if s.disagreement is not None:
            disagreement.append(float(s.disagreement))
        elif rule == "nash_bargaining":
            _finite(program, [(s, b)], "lower", "declare input ranges or set its disagreement point")
            disagreement.append(b.lo)
        else:
            disagreement.append(b.lo if math.isfinite(b.lo) else 0.0)
    pairs = list(zip(program.stakeholders, bounds, strict=True))
    if rule == "max_min":
        _finite(program, pairs, "upper", "max_min needs ideal points z_i: declare input ranges")
    lex_lo: tuple[float, ...] = tuple(b.lo if math.isfinite(b.lo) else 0.0 for b in bounds)
    lex_coef: tuple[float, ...] = (0.0,) * len(bounds)
    if rule == "lexicographic":
        _finite(program, pairs, "lower", "the lexicographic scalar needs bounded utilities")
        _finite(program, pairs, "upper", "the lexicographic scalar needs bounded utilities")
        lex_coef = lex_coefficients(
            [b.lo for b in bounds],
            [b.hi for b in bounds],
            lex_order_indices(program),
            program.lex_tolerance,
        )
    return AggregationParams(
        rule=rule,
        weights=tuple(float(s.weight) for s in program.stakeholders),
        disagreement=tuple(disagreement),
        ideal=tuple(b.hi if math.isfinite(b.hi) else 0.0 for b in bounds),
        lex_lo=lex_lo,
        lex_coef=lex_coef,
        floor=float(program.floor_reward),
    )


def _base_bounds(
    params: AggregationParams, bounds: tuple[Interval, ...], rounding: bool
) -> tuple[Interval | None, bool]:
    """Enclosure of the rule's reward on in-set rows (None if no row is in the set) and
    whether a row may fall outside the Nash bargaining set."""
    w = params.weights

    def acc(terms: list[Interval]) -> Interval:
        total = terms[0]
        for t in terms[1:]:
            total = iv._widen(iv.add(total, t), rounding)
        return total

    def const(c: float) -> Interval:
        return iv._f32_hull(c) if rounding else Interval(c, c)

    def scale(b: Interval, c: float) -> Interval:
        return iv._widen(iv.mul(b, const(c)), rounding)

    if params.rule == "weighted_sum":
        return acc([scale(b, w[i]) for i, b in enumerate(bounds)]), False
    if params.rule == "utilitarian":
        return acc(list(bounds)), False
    if params.rule == "max_min":
        regrets = [scale(iv._widen(iv.add(const(params.ideal[i]), iv.neg(b)), rounding), w[i])
                   for i, b in enumerate(bounds)]
        return iv.neg(iv.call("max", regrets)), False
    if params.rule == "lexicographic":
        terms = [scale(iv._widen(iv.add(b, iv.neg(const(params.lex_lo[i]))), rounding), c)
                 for i, (b, c) in enumerate(zip(bounds, params.lex_coef, strict=True)) if c]
        return (acc(terms) if terms else Interval(0.0, 0.0)), False
    outside = False
    terms = []
    for i, b in enumerate(bounds):
        d = const(params.disagreement[i])
        if b.hi - d.lo <= 0:
            return None, True
        outside = outside or b.lo <= d.hi or b.nan
        gap = iv._widen(Interval(max(b.lo - d.hi, 0.0), b.hi - d.lo), rounding)
        terms.append(scale(iv._widen(iv.call("log", [gap]), rounding), w[i]))
    return acc(terms), outside


def reward_bounds(program: ContractProgram, rounding: bool = True) -> Interval:
    """Enclosure of the final reward of any row whose inputs lie in the declared box.

    Includes INVARIANT penalties, REQUIRES / quantifier vetoes and the Nash bargaining-set
    floor. ``rounding=True`` makes it sound for the float32 programs.
    """
    params = aggregation_params(program)
    env = input_env(program, rounding)
    base, outside = _base_bounds(params, utility_bounds(program, rounding), rounding)
    floor = iv._f32_hull(params.floor) if rounding else Interval(params.floor, params.floor)
    penalty = Interval(0.0, 0.0)
    veto_possible, veto_certain = outside, base is None
    for clause in program.clauses:
        if clause.kind == "ENSURES":
            continue
        holds = iv.interval_of(clause.expr, env, rounding)
        if clause.kind == "INVARIANT":
            cost = float(clause.penalty if clause.penalty is not None else 1.0) * float(
                clause.severity if clause.severity is not None else 1.0
            )
            paid = iv._f32_hull(cost) if rounding else Interval(cost, cost)
            if holds.is_false:
                penalty = iv._widen(iv.add(penalty, paid), rounding)
            elif not holds.is_true:
                penalty = iv._widen(iv.add(penalty, iv.hull(paid, Interval(0.0, 0.0))), rounding)
        elif not holds.is_true:
            veto_possible = True
            veto_certain = veto_certain or holds.is_false
    if veto_certain or base is None:
        return floor
    scored = iv._widen(iv.add(base, iv.neg(penalty)), rounding)
    return iv.hull(scored, floor) if veto_possible else scored
