"""Hypothesis strategies for well-typed Legal-Blocks ASTs over a given input schema.

``expressions(inputs, "number")`` draws number-typed expressions, ``expressions(inputs,
"bool")`` boolean ones; both cover every node kind: literals, inputs, ``reward`` (when allowed),
``r.column`` (inside a quantifier), unary and binary operators, chained comparisons, IF, calls
of every registered function, and normalisations ``zscore`` / ``rank`` / ``minmax`` ``(x IN
prompt | run)`` outside quantifiers (their argument reads inputs only, never normalises). ``clause_blocks(inputs)`` draws whole clause blocks with
unique labels, every clause kind, and explicit INVARIANT penalties / severities.
"""

from __future__ import annotations

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
from rlhf_core.contract.legal_blocks.functions import FUNCTIONS, GROUPS, NORMALIZERS
from rlhf_core.contract.legal_blocks.lexer import KEYWORDS
from rlhf_core.contract.program import InputDecl

DEFAULT_INPUTS = (
    InputDecl("helpfulness", "float", 0.0, 4.0),
    InputDecl("correctness", "float", 0.0, 4.0),
    InputDecl("verbosity", "float", 0.0, 4.0),
    InputDecl("severity", "int", 0.0, 3.0),
    InputDecl("is_safe", "bool"),
    InputDecl("flagged", "bool"),
    InputDecl("response", "str"),
)

_UNARY_FNS = sorted(n for n, s in FUNCTIONS.items() if s.max_arity == 1 and s.arg_type == "number")
_ORDER_OPS = ("<", "<=", ">", ">=", "==", "!=")

numbers = st.one_of(
    st.integers(min_value=0, max_value=10**18).map(lambda i: Num(float(i), is_int=True)),
    st.floats(min_value=0.0, allow_nan=False, allow_infinity=False).map(Num),
)
"""Non-negative finite literals (the parser produces ``-x`` as a Unary, never a negative Num)."""

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: s not in ("true", "false")
)


class _Builder:
    """Memoised typed strategies for one environment (inputs, reward, quantifier var)."""

    def __init__(
        self, inputs: tuple[InputDecl, ...], allow_reward: bool, qvar: str | None, depth: int,
        normalize: bool = True,
    ) -> None:
        self.inputs = inputs
        self.allow_reward = allow_reward
        self.qvar = qvar
        self.depth = depth
        self.normalize = normalize and qvar is None
        self._memo: dict[tuple[str, int], st.SearchStrategy[Expr]] = {}
        self._plain: _Builder | None = None

    def plain(self) -> _Builder:
        """Builder of normalisation arguments: inputs only (no ``reward``, no nesting)."""
        if self._plain is None:
            self._plain = _Builder(self.inputs, False, None, self.depth, normalize=False)
        return self._plain

    def _ref(self, name: str) -> Expr:
        return Attr(self.qvar, name) if self.qvar is not None else Name(name)

    def _columns(self, dtypes: tuple[str, ...]) -> list[Expr]:
        return [self._ref(d.name) for d in self.inputs if d.dtype in dtypes]

    def leaves(self, ty: str) -> st.SearchStrategy[Expr]:
        if ty == "number":
            refs = self._columns(("float", "int"))
            if self.allow_reward:
                refs.append(Name("reward"))
            base = numbers
        else:
            refs = self._columns(("bool",))
            base = st.booleans().map(Bool)
        return st.one_of(base, st.sampled_from(refs)) if refs else base

    def typed(self, ty: str, depth: int) -> st.SearchStrategy[Expr]:
        key = (ty, depth)
        if key not in self._memo:
            leaves = self.leaves(ty)
            self._memo[key] = (
                leaves if depth <= 0 else st.one_of(leaves, self._composite(ty, depth))
            )
        return self._memo[key]

    def _composite(self, ty: str, depth: int) -> st.SearchStrategy[Expr]:
        num = st.deferred(lambda: self.typed("number", depth - 1))
        boo = st.deferred(lambda: self.typed("bool", depth - 1))
        if ty == "number":
            options = [
                st.builds(Unary, st.just("-"), num),
                st.builds(Binary, st.sampled_from(["+", "-", "*", "/", "^"]), num, num),
                st.builds(IfElse, boo, num, num),
                st.builds(
                    Call,
                    st.sampled_from(["min", "max"]),
                    st.lists(num, min_size=2, max_size=4).map(tuple),
                ),
                st.builds(Call, st.sampled_from(_UNARY_FNS), st.tuples(num)),
                st.builds(Call, st.just("clip"), st.tuples(num, num, num)),
            ]
            if self.normalize:
                arg = st.deferred(lambda: self.plain().typed("number", depth - 1))
                options.append(st.builds(Normalize, st.sampled_from(NORMALIZERS), arg,
                                         st.sampled_from(GROUPS)))
            text_cols = self._columns(("str",))
            if text_cols:
                options.append(
                    st.builds(Call, st.just("len"), st.tuples(st.sampled_from(text_cols)))
                )
            return st.one_of(options)
        return st.one_of(
            st.builds(Unary, st.just("NOT"), boo),
            st.builds(Binary, st.sampled_from(["AND", "OR", "IMPLIES"]), boo, boo),
            st.builds(IfElse, boo, boo, boo),
            _chains(num, _ORDER_OPS),
            _chains(boo, ("==", "!=")),
        )


def _chains(operand: st.SearchStrategy[Expr], ops: tuple[str, ...]) -> st.SearchStrategy[Expr]:
    def build(n: int) -> st.SearchStrategy[Expr]:
        return st.builds(
            lambda o, e: Compare(tuple(o), tuple(e)),
            st.lists(st.sampled_from(ops), min_size=n, max_size=n),
            st.lists(operand, min_size=n + 1, max_size=n + 1),
        )

    return st.integers(min_value=1, max_value=3).flatmap(build)


def expressions(
    inputs: tuple[InputDecl, ...] = DEFAULT_INPUTS,
    ty: str = "number",
    *,
    allow_reward: bool = False,
    qvar: str | None = None,
    depth: int = 4,
) -> st.SearchStrategy[Expr]:
    """Well-typed expressions of type ``ty`` ("number" or "bool") over ``inputs``.

    Args:
        inputs: Declared inputs the expression may reference.
        ty: Result type.
        allow_reward: Also reference ``reward`` (ENSURES bodies).
        qvar: Quantifier variable: columns are referenced as ``qvar.column``.
        depth: Maximum nesting of composite nodes.
    """
    return _Builder(inputs, allow_reward, qvar, depth).typed(ty, depth)


def _clause_bodies(
    inputs: tuple[InputDecl, ...],
) -> st.SearchStrategy[tuple[str, Expr, float | None, float | None, str | None]]:
    """(kind, expr, penalty, severity, var) of one clause; built once, labels added later."""
    declared = {d.name for d in inputs}
    qvars = [v for v in ("r", "cand", "c2", "resp_x") if v not in declared]
    penalty = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
    plain = expressions(inputs, "bool", depth=3)
    options = [
        st.builds(lambda e: ("REQUIRES", e, None, None, None), plain),
        st.builds(lambda e, p, s: ("INVARIANT", e, p, s, None), plain, penalty, penalty),
        st.builds(
            lambda e: ("ENSURES", e, None, None, None),
            expressions(inputs, "bool", allow_reward=True, depth=3),
        ),
    ]
    for var in qvars[:2]:
        options.append(
            st.builds(
                lambda kind, e, v=var: (kind, e, None, None, v),
                st.sampled_from(["FORALL", "EXISTS"]),
                expressions(inputs, "bool", qvar=var, depth=3),
            )
        )
    return st.one_of(options)


def clause_blocks(
    inputs: tuple[InputDecl, ...] = DEFAULT_INPUTS, max_clauses: int = 5
) -> st.SearchStrategy[tuple[Clause, ...]]:
    """Blocks of 0..``max_clauses`` clauses with unique labels over ``inputs``."""
    labels = identifiers.filter(lambda s: s.upper() not in KEYWORDS)
    bodies = _clause_bodies(inputs)
    return st.lists(st.tuples(labels, bodies), max_size=max_clauses, unique_by=lambda t: t[0]).map(
        lambda items: tuple(Clause(label, *body) for label, body in items)
    )
