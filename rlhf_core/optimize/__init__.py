"""Stakeholder trade-offs: Pareto front, Nash point, constrained KL policy, ES / annealing /
hybrid search for non-differentiable rules, and DPO pair selection (JAX + optax)."""

from rlhf_core.optimize.annealing import make_annealing_search
from rlhf_core.optimize.bargaining import NashPoint, nash_point, regret
from rlhf_core.optimize.es import SNES, SearchResult, SNESState, make_es_search
from rlhf_core.optimize.front import Hypervolume, hypervolume, knee_point, non_dominated
from rlhf_core.optimize.hybrid import make_hybrid_search
from rlhf_core.optimize.kl_policy import (
    KLPolicyConfig,
    KLPolicyResult,
    check_policy,
    make_kl_policy,
    tilted_policy,
)
from rlhf_core.optimize.objectives import hard_constraint, lexicographic, max_min, soft_max_min
from rlhf_core.optimize.pair_policy import PairPolicy
from rlhf_core.optimize.pair_set import PairSet, build_pairs, select_pairs_table
from rlhf_core.optimize.pairs import STRATEGIES, PairSelection, select_pairs
from rlhf_core.optimize.pareto import (
    choose,
    ideal_utilities,
    make_pareto_evaluator,
    mean_utilities,
    random_choice_utilities,
    simplex_lattice,
    simplex_random,
)
from rlhf_core.optimize.pareto_table import compute_pareto
from rlhf_core.optimize.tables import (
    ScoreTensor,
    optimize_policy,
    scores_to_tensor,
)

__all__ = [
    "SNES",
    "STRATEGIES",
    "Hypervolume",
    "KLPolicyConfig",
    "KLPolicyResult",
    "NashPoint",
    "PairPolicy",
    "PairSelection",
    "PairSet",
    "SNESState",
    "ScoreTensor",
    "SearchResult",
    "build_pairs",
    "check_policy",
    "choose",
    "compute_pareto",
    "hard_constraint",
    "hypervolume",
    "ideal_utilities",
    "knee_point",
    "lexicographic",
    "make_annealing_search",
    "make_es_search",
    "make_hybrid_search",
    "make_kl_policy",
    "make_pareto_evaluator",
    "max_min",
    "mean_utilities",
    "nash_point",
    "non_dominated",
    "optimize_policy",
    "random_choice_utilities",
    "regret",
    "scores_to_tensor",
    "select_pairs",
    "select_pairs_table",
    "simplex_lattice",
    "simplex_random",
    "soft_max_min",
    "tilted_policy",
]
