"""The pair policy: the contract's ``selection`` settings that decide which pairs a run ships.

:class:`PairPolicy` is the plain, validated form the pair builder takes (no pydantic in the
builder); :meth:`PairPolicy.from_selection` reads it from a contract's
:class:`rlhf_core.contract.spec.SelectionSpec`, whose validators already refused inconsistent
combinations (docs/contracts.md#selection).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PairPolicy"]


@dataclass(frozen=True)
class PairPolicy:
    """How a run's pairs are drawn (defaults: today's ``best_vs_worst`` pairs, no gate).

    Attributes:
        pairing: ``best_vs_worst``, ``all_above_margin``, ``best_vs_random``, ``all_pairs``,
            ``adjacent``, ``threshold`` or ``human``.
        min_margin: Minimum reward gap (strict); not used by ``human``.
        seed: Seed of ``best_vs_random`` and of the length-balanced subsample.
        max_pairs_per_prompt: Cap per prompt, largest margins kept (None: no cap).
        reward_threshold: ``threshold``'s reward threshold; ``ties: kto``'s desirability bar.
        ties: ``drop``, ``keep`` (a pair with margin 0) or ``kto`` (unpaired KTO examples).
        weight: ``none``, ``margin_sigmoid`` or ``label_confidence``.
        on_disagreement: ``human``: ``flag`` or ``drop`` labelled pairs the reward ranks the
            other way.
        criterion: ``human``: the label column (None: ``better``, or the only one).
        length_balance: Subsample to a 50/50 length split.
        max_chosen_longer: Highest share of pairs with the longer response chosen that may be
            exported (None: no gate).
    """

    pairing: str = "best_vs_worst"
    min_margin: float = 0.0
    seed: int = 0
    max_pairs_per_prompt: int | None = None
    reward_threshold: float | None = None
    ties: str = "drop"
    weight: str = "none"
    on_disagreement: str = "flag"
    criterion: str | None = None
    length_balance: bool = False
    max_chosen_longer: float | None = None

    @classmethod
    def from_selection(cls, selection: Any) -> PairPolicy:
        """The policy of a contract's ``selection`` (a :class:`SelectionSpec`)."""
        return cls(**{name: getattr(selection, name) for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON values."""
        return asdict(self)
