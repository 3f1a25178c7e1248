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
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

DType = Literal["float", "int", "bool", "str"]
Rule = Literal["weighted_sum", "utilitarian", "nash_bargaining", "max_min", "lexicographic"]
Pairing = Literal["best_vs_worst", "all_above_margin", "best_vs_random", "all_pairs", "adjacent",
                  "threshold", "human"]
TiePolicy = Literal["drop", "keep", "kto"]
PairWeight = Literal["none", "margin_sigmoid", "label_confidence"]
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
    ``missing_contract_input``; the default), score it with ``default`` in its place
    (``on_null: default`` needs ``default``, of the input's type and inside its range), or keep
    it ``veto``-ed (floor reward; ``default`` is then the optional placeholder it is computed
    with, else the range's low end, 0, false or "").
    """

    dtype: DType
    range: tuple[Number, Number] | None = None
    on_null: Literal["quarantine", "default", "veto"] = "quarantine"
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
        elif self.on_null == "veto" and self.default is not None:
            self._check_default(self.default)
        elif self.default is not None:
            raise ValueError("'default' applies only with on_null: default or veto; add one or "
                             "remove 'default'")
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
    """How preference pairs / selections are drawn from each prompt's candidates.

    The pair policy (docs/contracts.md#selection): ``pairing`` picks the pairs,
    ``max_pairs_per_prompt`` caps them per prompt (largest margins kept), ``ties`` says what
    happens to two allowed candidates of equal reward, ``weight`` gives every pair a weight,
    ``human`` pairs are the dataset's own labelled pairs (``criterion``, ``on_disagreement``),
    and ``max_chosen_longer`` / ``length_balance`` bound the pairs' length bias. Keys that only
    make sense with another setting are refused with the setting they need.
    """

    pairing: Pairing = "best_vs_worst"
    min_margin: Number = 0.0
    kl_beta: Number = 0.1
    seed: StrictInt = 0
    max_pairs_per_prompt: Annotated[StrictInt, Field(ge=1)] | None = None
    reward_threshold: Number | None = None
    ties: TiePolicy = "drop"
    weight: PairWeight = "none"
    on_disagreement: Literal["flag", "drop"] = "flag"
    criterion: Ident | None = None
    length_balance: StrictBool = False
    max_chosen_longer: Number | None = None

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

    @field_validator("reward_threshold")
    @classmethod
    def _check_threshold(cls, value: float | None) -> float | None:
        return None if value is None else _finite(value, "reward_threshold")

    @field_validator("max_chosen_longer")
    @classmethod
    def _check_longer(cls, value: float | None) -> float | None:
        if value is None:
            return None
        if not 0 < _finite(value, "max_chosen_longer") <= 1:
            raise ValueError(f"max_chosen_longer is a share of pairs in (0, 1], got {value}; "
                             "e.g. 0.65")
        return float(value)

    @model_validator(mode="after")
    def _policy_combinations(self) -> SelectionSpec:
        pairing = self.pairing
        if self.max_pairs_per_prompt is not None and pairing in ("best_vs_worst", "best_vs_random"):
            raise _located(("max_pairs_per_prompt",),
                           f"pairing {pairing} makes one pair per prompt; max_pairs_per_prompt "
                           "applies to all_pairs, all_above_margin, adjacent, threshold and human")
        if pairing == "threshold":
            if self.reward_threshold is None:
                raise _located(("pairing",), "pairing: threshold needs reward_threshold: <reward> "
                               "(chosen at or above it, rejected below it)")
            if self.ties != "drop":
                raise _located(("ties",), "threshold pairs never tie (chosen >= threshold > "
                               "rejected); remove ties")
        if self.ties == "kto" and self.reward_threshold is None:
            raise _located(("ties",), "ties: kto needs reward_threshold: <reward> (a tied response "
                           "at or above it is a desirable KTO example, below it undesirable)")
        if self.reward_threshold is not None and pairing != "threshold" and self.ties != "kto":
            raise _located(("reward_threshold",), "reward_threshold applies to pairing: threshold "
                           "and ties: kto; remove it or set one of those")
        if pairing != "human":
            for key, default in (("criterion", None), ("on_disagreement", "flag")):
                if getattr(self, key) != default:
                    raise _located((key,), f"'{key}' applies only to pairing: human; remove it")
            if self.weight == "label_confidence":
                raise _located(("weight",), "weight: label_confidence needs pairing: human (only "
                               "labelled pairs have a label confidence); use margin_sigmoid")
        elif self.min_margin != 0:
            raise _located(("min_margin",), "min_margin does not apply to pairing: human (the "
                           "labels decide the pairs); remove it")
        return self


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
