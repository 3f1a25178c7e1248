"""Pydantic models of the contract YAML file (docs/contracts.md#file-format).

The models validate structure and values only; Legal-Blocks text (utilities, clauses) stays a
string here and is parsed and type-checked by :func:`rlhf_core.contract.build.build_program`.
Every model forbids unknown keys.

Negative weights are not allowed. A stakeholder who wants *less* of an attribute expresses it
with an inverted utility and a positive weight, e.g. ``utility: 1 - verbosity / 4`` with
``weight: 0.33`` instead of ``utility: verbosity / 4`` with ``weight: -0.33``. On a bounded
attribute the two differ only by a constant, so rankings and preference pairs are unchanged,
while utilities stay "higher is better" (which Nash bargaining and max-min require).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

DType = Literal["float", "int", "bool", "str"]
Rule = Literal["weighted_sum", "utilitarian", "nash_bargaining", "max_min", "lexicographic"]
Pairing = Literal["best_vs_worst", "all_above_margin", "best_vs_random"]
Acknowledgement = Literal["nan_risk"]

IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"
PUBLIC_KEY_PATTERN = r"^ed25519:[A-Za-z0-9+/]{43}=$"

Number = StrictInt | StrictFloat
Ident = Annotated[str, Field(pattern=IDENT_PATTERN, max_length=64)]


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value}")
    return float(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """A typed input column: ``{dtype: float, range: [0, 4]}``.

    ``range`` is inclusive, needs ``lo <= hi`` and applies only to numeric dtypes. ``on_null``
    says what the ingest does with a row whose value is missing: ``quarantine`` it (rule
    ``missing_contract_input``; the default) or score it with ``default`` in its place
    (``on_null: default`` needs ``default``, of the input's type and inside its range).
    """

    dtype: DType
    range: tuple[Number, Number] | None = None
    on_null: Literal["quarantine", "default"] = "quarantine"
    default: bool | int | float | str | None = None

    @field_validator("range")
    @classmethod
    def _check_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is None:
            return None
        lo = _finite(value[0], "range lower bound")
        hi = _finite(value[1], "range upper bound")
        if lo > hi:
            raise ValueError(f"range lower bound {lo} exceeds upper bound {hi}; write [lo, hi]")
        return (lo, hi)

    @model_validator(mode="after")
    def _range_only_numeric(self) -> InputSpec:
        if self.range is not None and self.dtype in ("bool", "str"):
            raise ValueError(f"a {self.dtype} input cannot have a range; remove 'range'")
        if self.on_null == "default":
            if self.default is None:
                raise ValueError("on_null: default needs 'default: <value>' (what a missing value "
                                 "is scored as)")
            self._check_default(self.default)
        elif self.default is not None:
            raise ValueError("'default' applies only with on_null: default; add it or remove "
                             "'default'")
        return self

    def _check_default(self, value: object) -> None:
        numeric = self.dtype not in ("bool", "str")
        if self.dtype == "bool" and not isinstance(value, bool):
            raise ValueError(f"default {value!r} of a bool input must be true or false")
        if self.dtype == "str" and not isinstance(value, str):
            raise ValueError(f"default {value!r} of a str input must be a string")
        if numeric:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"default {value!r} of a {self.dtype} input must be a number")
            number = _finite(value, "default")
            if self.dtype == "int" and not float(number).is_integer():
                raise ValueError(f"default {value!r} of an int input must be a whole number")
            if self.range is not None and not self.range[0] <= number <= self.range[1]:
                raise ValueError(f"default {value!r} is outside the input's range "
                                 f"[{self.range[0]}, {self.range[1]}]")


class StakeholderSpec(_Strict):
    """One stakeholder: a positive weight, a utility expression and an optional approval key."""

    name: Ident
    weight: Number
    utility: Annotated[str, Field(min_length=1)]
    disagreement: Number | None = None
    public_key: Annotated[str, Field(pattern=PUBLIC_KEY_PATTERN)] | None = None

    @field_validator("weight")
    @classmethod
    def _check_weight(cls, value: float) -> float:
        value = _finite(value, "weight")
        if value <= 0:
            raise ValueError(
                f"weight must be > 0, got {value}; to penalise an attribute use an inverted "
                "utility such as '1 - verbosity / 4' with a positive weight"
            )
        return value

    @field_validator("disagreement")
    @classmethod
    def _check_disagreement(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value, "disagreement")


class AggregationSpec(_Strict):
    """Aggregation rule and its options (``order``/``tolerance`` for ``lexicographic`` only)."""

    rule: Rule
    order: list[Ident] | None = None
    tolerance: Number | None = None
    floor_reward: Number = -1.0

    @field_validator("floor_reward")
    @classmethod
    def _check_floor(cls, value: float) -> float:
        return _finite(value, "floor_reward")

    @field_validator("tolerance")
    @classmethod
    def _check_tolerance(cls, value: float | None) -> float | None:
        if value is not None and _finite(value, "tolerance") < 0:
            raise ValueError(f"tolerance must be >= 0, got {value}")
        return None if value is None else float(value)

    @model_validator(mode="after")
    def _lex_options(self) -> AggregationSpec:
        if self.rule != "lexicographic":
            for key in ("order", "tolerance"):
                if getattr(self, key) is not None:
                    raise ValueError(f"'{key}' applies only to rule lexicographic; remove it")
        return self


class SelectionSpec(_Strict):
    """How preference pairs / selections are drawn from each prompt's candidates."""

    pairing: Pairing = "best_vs_worst"
    min_margin: Number = 0.0
    kl_beta: Number = 0.1
    seed: StrictInt = 0

    @field_validator("min_margin")
    @classmethod
    def _check_margin(cls, value: float) -> float:
        if _finite(value, "min_margin") < 0:
            raise ValueError(f"min_margin must be >= 0, got {value}")
        return float(value)

    @field_validator("kl_beta")
    @classmethod
    def _check_beta(cls, value: float) -> float:
        if _finite(value, "kl_beta") <= 0:
            raise ValueError(f"kl_beta must be > 0, got {value}")
        return float(value)


class ApprovalSpec(_Strict):
    """How many distinct keyed stakeholders must sign before the contract is approved."""

    quorum: Annotated[StrictInt, Field(ge=1)] = 1


class ContractSpec(_Strict):
    """The whole contract file.

    Cross-field rules: stakeholder names unique; public keys unique; the lexicographic order
    names declared stakeholders at most once; ``approval.quorum`` is at most the number of
    stakeholders and, once any stakeholder declares a public key, at most the number of
    stakeholders with keys. A contract without any public key is a draft: it loads and scores
    but can never be approved (``verify`` fails until keys are added and signatures collected).
    """

    contract: Annotated[str, Field(pattern=NAME_PATTERN, max_length=128)]
    version: Annotated[str, Field(pattern=SEMVER_PATTERN, max_length=64)]
    description: str = ""
    supersedes: Annotated[str, Field(pattern=HASH_PATTERN)] | None = None
    inputs: dict[Ident, InputSpec] = Field(min_length=1)
    stakeholders: list[StakeholderSpec] = Field(min_length=1)
    aggregation: AggregationSpec
    clauses: str = ""
    selection: SelectionSpec = SelectionSpec()
    approval: ApprovalSpec = ApprovalSpec()
    max_candidates: Annotated[StrictInt, Field(ge=1)] | None = None
    acknowledge: list[Acknowledgement] = Field(default_factory=list)

    @field_validator("acknowledge")
    @classmethod
    def _unique_acknowledgements(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an acknowledgement is listed twice; list each once")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ContractSpec:
        seen: dict[str, int] = {}
        keys: dict[str, str] = {}
        for i, holder in enumerate(self.stakeholders):
            if holder.name in seen:
                raise _located(
                    ("stakeholders", i, "name"),
                    f"duplicate stakeholder '{holder.name}' (also stakeholders[{seen[holder.name]}]);"
                    " stakeholder names must be unique",
                )
            seen[holder.name] = i
            if holder.public_key is not None:
                if holder.public_key in keys:
                    raise _located(
                        ("stakeholders", i, "public_key"),
                        f"stakeholder '{holder.name}' reuses the public key of "
                        f"'{keys[holder.public_key]}'; every approver needs its own key",
                    )
                keys[holder.public_key] = holder.name
        for j, name in enumerate(self.aggregation.order or ()):
            if name not in seen:
                raise _located(
                    ("aggregation", "order", j),
                    f"lexicographic order names undeclared stakeholder '{name}'; "
                    f"declared: {', '.join(seen)}",
                )
            if name in (self.aggregation.order or [])[:j]:
                raise _located(("aggregation", "order", j), f"'{name}' appears twice in order")
        quorum = self.approval.quorum
        if quorum > len(self.stakeholders):
            raise _located(
                ("approval", "quorum"),
                f"quorum {quorum} exceeds the {len(self.stakeholders)} declared stakeholder(s); "
                "lower the quorum",
            )
        if keys and quorum > len(keys):
            raise _located(
                ("approval", "quorum"),
                f"quorum {quorum} exceeds the {len(keys)} stakeholder(s) with a public_key; "
                "lower the quorum or add public keys",
            )
        return self


class LocatedValueError(ValueError):
    """A cross-field validation error that knows which YAML path it concerns."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _located(loc: tuple[str | int, ...], message: str) -> LocatedValueError:
    return LocatedValueError(loc, message)


_SEMVER_RE = re.compile(SEMVER_PATTERN)


def semver_key(version: str) -> tuple[int, int, int]:
    """The (major, minor, patch) triple of a validated semver string."""
    match = _SEMVER_RE.match(version)
    if match is None:
        raise ValueError(f"not a semantic version: {version!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))
