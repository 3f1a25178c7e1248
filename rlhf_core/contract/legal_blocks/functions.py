"""Registry of the functions a Legal-Blocks expression may call.

The parser rejects calls to anything not listed here, the checker enforces arity and argument
types from this table, and the JAX / SQL compilers map each name to their own implementation.
The table is frozen: adding a function is a change of the language, reviewed like one.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

ValueType = Literal["bool", "number", "str"]


@dataclass(frozen=True)
class FunctionSig:
    """Signature of a registered function.

    Attributes:
        name: Function name as written in contracts.
        min_arity: Fewest arguments.
        max_arity: Most arguments, or ``None`` when variadic.
        arg_type: Type every argument must have.
        return_type: Type of the call.
    """

    name: str
    min_arity: int
    max_arity: int | None
    arg_type: ValueType
    return_type: ValueType

    def arity_text(self) -> str:
        """Human-readable arity, e.g. ``1``, ``3`` or ``2 or more``."""
        if self.max_arity is None:
            return f"{self.min_arity} or more"
        if self.max_arity == self.min_arity:
            return str(self.min_arity)
        return f"{self.min_arity} to {self.max_arity}"


def _sig(name: str, lo: int, hi: int | None, arg: ValueType = "number") -> FunctionSig:
    return FunctionSig(name, lo, hi, arg, "number")


FUNCTIONS: MappingProxyType[str, FunctionSig] = MappingProxyType(
    {
        sig.name: sig
        for sig in (
            _sig("min", 2, None),
            _sig("max", 2, None),
            _sig("abs", 1, 1),
            _sig("log", 1, 1),
            _sig("exp", 1, 1),
            _sig("sqrt", 1, 1),
            _sig("sigmoid", 1, 1),
            _sig("tanh", 1, 1),
            _sig("floor", 1, 1),
            _sig("ceil", 1, 1),
            _sig("clip", 3, 3),
            _sig("len", 1, 1, "str"),
        )
    }
)
"""Function name -> signature. ``clip(x, lo, hi)``; ``len(s)`` takes a str column."""


NORMALIZERS: tuple[str, ...] = ("zscore", "rank", "minmax")
"""Group-relative functions, written ``fn(expr IN group)`` (docs/contracts.md#normalised-signals).

They are not in ``FUNCTIONS``: their argument list is one expression and a group, not a list of
values, and their value depends on other rows (see ``legal_blocks.normalize``)."""

GROUPS: tuple[str, ...] = ("prompt", "run")
"""Groups a normalisation ranges over: the candidates of the row's prompt, or the whole run."""

NEUTRAL: MappingProxyType[str, float] = MappingProxyType({"zscore": 0.0, "rank": 0.5, "minmax": 0.5})
"""Value of a normalisation for a row whose argument is not finite, a group of one, or a group
whose finite values are all equal."""


def callable_names() -> tuple[str, ...]:
    """Every name that may be called, sorted (for error messages)."""
    return tuple(sorted((*FUNCTIONS, *NORMALIZERS)))
