"""Bradley–Terry reward models over features the project computes itself (JAX + optax)."""

from rlhf_core.preference.dataset import PairArrays, Standardiser, build_pairs, response_features
from rlhf_core.preference.features import FeaturizerConfig, featurize
from rlhf_core.preference.fit import FitConfig, FitResult, check_fit, make_fit
from rlhf_core.preference.metrics import (
    accuracy,
    expected_calibration_error,
    log_loss,
    pair_metrics,
)
from rlhf_core.preference.model import (
    LinearHead,
    MLPHead,
    PairData,
    pair_logits,
    pair_losses,
    reward,
)
from rlhf_core.preference.pipeline import (
    RewardModelConfig,
    fit_reward_models,
    score_responses,
)
from rlhf_core.preference.serialize import (
    RewardModel,
    models_from_table,
    models_to_table,
)
from rlhf_core.preference.splits import grouped_kfold, grouped_split

__all__ = [
    "FeaturizerConfig",
    "FitConfig",
    "FitResult",
    "LinearHead",
    "MLPHead",
    "PairArrays",
    "PairData",
    "RewardModel",
    "RewardModelConfig",
    "Standardiser",
    "accuracy",
    "build_pairs",
    "check_fit",
    "expected_calibration_error",
    "featurize",
    "fit_reward_models",
    "grouped_kfold",
    "grouped_split",
    "log_loss",
    "make_fit",
    "models_from_table",
    "models_to_table",
    "pair_logits",
    "pair_losses",
    "pair_metrics",
    "response_features",
    "reward",
    "score_responses",
]
