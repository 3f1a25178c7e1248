"""The search configuration: what every run shares (budget, seed) plus one algorithm's parameters.

``SearchConfig.params`` is a discriminated union on ``algorithm``, so a configuration names its
algorithm once and carries only that algorithm's parameters (every default lives in its class in
:mod:`rlhf_core.planner.params`)::

    SearchConfig(budget=5000, seed=1, params=BPGAParams(pop_size=40))
    SearchConfig.model_validate({"budget": 5000, "params": {"algorithm": "ga", "pop_size": 32}})
    search_config("qiea", budget=1000, window_moves=0)     # flat options (CLI, benchmarks)
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlhf_core.errors import ConfigError
from rlhf_core.planner.params import (
    PARAMS_CLASSES,
    AlgorithmName,
    BPGAParams,
    GAParams,
    QIEAParams,
)

AlgorithmParams = Annotated[QIEAParams | BPGAParams | GAParams, Field(discriminator="algorithm")]
"""One algorithm's parameters, tagged by ``algorithm``."""

class SearchConfig(BaseModel):
    """How to search: the schedule budget and seed every run has, and one algorithm's parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget: int = Field(5000, ge=1, description="schedules per instance (each SGS pass counts)")
    seed: int = Field(0, description="random seed (same seed, same plan)")
    params: AlgorithmParams = Field(default_factory=QIEAParams,
                                    description="the algorithm and its parameters")

    @property
    def algorithm(self) -> AlgorithmName:
        """The algorithm's tag (``"qiea"``, ``"bpga"`` or ``"ga"``)."""
        return self.params.algorithm

    def with_params(self, **changes: Any) -> SearchConfig:
        """The same configuration with some of the algorithm's parameters changed (validated; fields
        left at their defaults stay defaults, so derived ones follow)."""
        params = type(self.params).model_validate({**self.params.model_dump(exclude_unset=True), **changes})
        return self.model_copy(update={"params": params})

    def generations(self) -> int:
        """``step`` calls after ``init`` that fit in the budget (see the params classes).

        Raises:
            PlannerError: the budget does not cover one generation.
        """
        return self.params.generations(self.budget)


def _describe(exc: ValidationError, algorithm: str) -> str:
    parts = []
    for err in exc.errors():
        name = str(err["loc"][-1]) if err["loc"] else "<config>"
        if err["type"] == "extra_forbidden":
            known = ", ".join(n for n in PARAMS_CLASSES[algorithm].model_fields if n != "algorithm")
            parts.append(f"{algorithm} has no parameter {name!r} (it has: {known})")
        else:
            parts.append(f"{name}: {err['msg']}")
    return "; ".join(parts)


def search_config(
    algorithm: str, *, budget: int | None = None, seed: int | None = None, where: str | None = None,
    **options: Any,
) -> SearchConfig:
    """A configuration from flat options; options left out keep their defaults.

    Args:
        algorithm: ``"qiea"``, ``"bpga"`` or ``"ga"``.
        budget: Schedule budget (default: :class:`SearchConfig`'s).
        seed: Random seed (default: :class:`SearchConfig`'s).
        where: Where the options came from, for the error (e.g. ``"<command line>"``).
        **options: Fields of the algorithm's parameter class.

    Raises:
        ConfigError: an unknown algorithm, an option the algorithm does not have, or a value the
            parameter class refuses (all named in one line).
        PlannerError: a combination the algorithm cannot run (e.g. QIEA window moves that leave
            no observed child).
    """
    common = {k: v for k, v in (("budget", budget), ("seed", seed)) if v is not None}
    try:
        return SearchConfig.model_validate({**common, "params": {"algorithm": algorithm, **options}})
    except ValidationError as exc:
        if algorithm not in PARAMS_CLASSES:
            raise ConfigError(f"unknown algorithm {algorithm!r}; choose one of "
                              f"{', '.join(PARAMS_CLASSES)}", where) from None
        raise ConfigError(_describe(exc, algorithm), where) from None
