"""Entry points on Arrow tables: fit one reward model per criterion, score responses with it.

``fit_reward_models`` runs, per criterion, a prompt-grouped k-fold cross-validation over seeds and
an L2 grid (metrics per fold and split), picks the L2 with the best mean validation log-loss, and
refits on all pairs. Adam stops early on a prompt-grouped split carved out of the training
prompts (never the held-out fold, so cross-validated metrics stay unbiased). ``score_responses`` adds a
``rm_<criterion>`` float32 column that contracts can use as an input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa

from rlhf_core.errors import DataError
from rlhf_core.lake.catalog import METRICS_SCHEMA
from rlhf_core.preference.dataset import (
    Standardiser,
    build_pairs,
    dense_start,
    response_features,
)
from rlhf_core.preference.features import FeaturizerConfig
from rlhf_core.preference.fit import FitConfig, check_fit, make_fit
from rlhf_core.preference.metrics import pair_metrics
from rlhf_core.preference.model import PairData, pair_logits, reward
from rlhf_core.preference.serialize import RewardModel, models_from_table, models_to_table
from rlhf_core.preference.splits import grouped_kfold, grouped_split


@dataclass(frozen=True)
class RewardModelConfig:
    """What to fit.

    Args:
        criteria: Label columns of ``preferences`` (one model each).
        featurizer: Hashed text feature widths.
        numeric_columns: Numeric attribute columns of ``responses`` used as features.
        fit: Optimiser settings.
        l2_grid: L2 strengths tried in cross-validation (empty: only ``fit.l2``).
        k_folds: Prompt-grouped folds.
        seeds: Seeds (fold assignment and initialisation).
        ties: ``"drop"`` or ``"half"``.
        use_margin: Use the preferences ``margin`` column as the TRL margin.
        early_stopping_fraction: Prompt share held out for early stopping in the final Adam fit.
    """

    criteria: tuple[str, ...] = ("better",)
    featurizer: FeaturizerConfig = field(default_factory=FeaturizerConfig)
    numeric_columns: tuple[str, ...] = ()
    fit: FitConfig = field(default_factory=FitConfig)
    l2_grid: tuple[float, ...] = ()
    k_folds: int = 5
    seeds: tuple[int, ...] = (0,)
    ties: Literal["drop", "half"] = "drop"
    use_margin: bool = False
    early_stopping_fraction: float = 0.15




def _train_standardiser(feats: np.ndarray, data: PairData, train: np.ndarray, start: int) -> Standardiser:
    rows = np.unique(np.concatenate([data.chosen[train > 0], data.rejected[train > 0]]))
    return Standardiser.fit(feats[rows], start)


def _bucket(n: int) -> int:
    """Next power of two (at least 256): few distinct shapes, so few recompilations."""
    return max(256, 1 << (max(n, 1) - 1).bit_length())


def _padded(data: PairData, *weights: np.ndarray) -> tuple[PairData, list[np.ndarray]]:
    """Pad responses and pairs to bucket sizes; padded pairs carry weight 0."""
    n_r, n_p = data.feats.shape[0], data.chosen.shape[0]
    r, p = _bucket(n_r) - n_r, _bucket(n_p) - n_p
    feats = np.pad(np.asarray(data.feats), ((0, r), (0, 0)))
    padded = PairData(feats, np.pad(data.chosen, (0, p)), np.pad(data.rejected, (0, p)),
                      np.pad(data.margin, (0, p)), np.pad(data.target, (0, p), constant_values=1.0))
    return padded, [np.pad(w, (0, p)) for w in weights]


def _fit_padded(fit, key, data, train, stop, l2):  # noqa: ANN001, ANN202
    padded, (train_p, stop_p) = _padded(data, train, stop)
    return fit(key, padded, train_p, stop_p, jnp.float32(l2))


def _early_stopping_split(
    config: RewardModelConfig, prompt_ids: np.ndarray, pool: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split the ``pool`` rows into (train, early-stopping) weights, grouped by prompt.

    Only Adam stops early; L-BFGS trains on the whole pool. The held-out CV fold is never used
    for stopping, so its metrics stay unbiased.
    """
    if config.fit.optimizer != "adam":
        return pool, np.zeros_like(pool)
    inside = pool > 0
    stop = np.zeros_like(pool)
    stop[inside] = grouped_split(prompt_ids[inside], config.early_stopping_fraction, seed)
    return pool * (1.0 - stop), stop


def _metric_rows(crit, l2, seed, fold, res, data, weights) -> list[dict]:  # noqa: ANN001
    logits = pair_logits(res.params, data)
    rows = []
    for split, w in weights.items():
        m = {k: float(v) for k, v in pair_metrics(logits, data.target, jnp.asarray(w)).items()}
        rows.append(
            {"criterion": crit, "l2": float(l2), "seed": seed, "fold": fold, "split": split,
             "accuracy": m["accuracy"], "log_loss": m["log_loss"], "ece": m["ece"],
             "n_pairs": int(m["n_pairs"]), "steps": int(res.steps), "converged": bool(res.converged)}
        )
    return rows


def fit_reward_models(
    responses: pa.Table, preferences: pa.Table, config: RewardModelConfig
) -> tuple[pa.Table, pa.Table]:
    """Fit one Bradley–Terry model per criterion with grouped k-fold model selection.

    Args:
        responses: Normalised responses (``response_id``, ``prompt``, ``response``, attributes).
        preferences: Normalised preferences (``pair_id``, ``prompt_id``, ``response_a_id``,
            ``response_b_id``, one label column per criterion, optional ``margin``).
        config: What to fit.

    Returns:
        ``(models, metrics)``: :data:`~rlhf_core.preference.serialize.MODEL_SCHEMA` rows (one per
        criterion) and :data:`METRICS_SCHEMA` rows (per criterion × l2 × seed × fold × split, plus
        ``fold = -1`` rows for the final model).

    Raises:
        DataError: If a criterion has too few pairs or prompts to cross-validate.
        OptimizationDivergedError: If a fit produced non-finite values.
    """
    fit = make_fit(config.fit)
    raw = response_features(responses, config.featurizer, config.numeric_columns)
    start = dense_start(config.featurizer)
    models: list[RewardModel] = []
    metric_rows: list[dict] = []
    for crit in config.criteria:
        pairs = build_pairs(responses, preferences, crit, raw, config.ties, config.use_margin)
        n_prompts = len(set(pairs.prompt_ids.tolist()))
        if n_prompts < max(config.k_folds, 2):
            raise DataError(
                f"criterion {crit!r}: {len(pairs.pair_ids)} usable pairs over {n_prompts} prompts; "
                f"need at least {config.k_folds} prompts for {config.k_folds}-fold grouped CV"
            )
        grid = config.l2_grid or (config.fit.l2,)
        val_loss: dict[float, list[float]] = {l2: [] for l2 in grid}
        for seed in config.seeds:
            folds = grouped_kfold(pairs.prompt_ids, config.k_folds, seed)
            for k in range(config.k_folds):
                val = (folds == k).astype(np.float32)
                train, stop = _early_stopping_split(config, pairs.prompt_ids, 1.0 - val, seed)
                std = _train_standardiser(raw, pairs.data, train, start)
                data = pairs.data._replace(feats=std.apply(raw))
                for l2 in grid:
                    res = _fit_padded(fit, jax.random.key(seed), data, train, stop, l2)
                    check_fit(res, f"criterion={crit} seed={seed} fold={k} l2={l2}")
                    rows = _metric_rows(crit, l2, seed, k, res, data, {"train": train, "val": val})
                    metric_rows += rows
                    val_loss[l2].append(rows[1]["log_loss"])
        best_l2 = min(grid, key=lambda l2: float(np.mean(val_loss[l2])))
        train, stop = _early_stopping_split(config, pairs.prompt_ids, np.ones(len(pairs.pair_ids), np.float32),
                                            config.seeds[0])
        std = _train_standardiser(raw, pairs.data, train, start)
        data = pairs.data._replace(feats=std.apply(raw))
        res = _fit_padded(fit, jax.random.key(config.seeds[0]), data, train, stop, best_l2)
        check_fit(res, f"criterion={crit} final l2={best_l2}")
        metric_rows += _metric_rows(crit, best_l2, config.seeds[0], -1, res, data, {"train": train})
        models.append(
            RewardModel(crit, f"bt-{crit}", jax.device_get(res.params), best_l2,
                        config.featurizer, tuple(config.numeric_columns), std)
        )
    return models_to_table(models), pa.Table.from_pylist(metric_rows, schema=METRICS_SCHEMA)


def score_responses(
    responses: pa.Table, models: pa.Table, criteria: Sequence[str] | None = None
) -> pa.Table:
    """Append ``rm_<criterion>`` (float32) reward columns computed by fitted models.

    Args:
        responses: Normalised responses (``prompt``, ``response`` and the numeric columns).
        models: Table written by :func:`fit_reward_models`.
        criteria: Which criteria to score (default: every model in the table).

    Returns:
        ``responses`` with one extra column per model (replaced if already present).
    """
    out = responses
    for m in models_from_table(models):
        if criteria is not None and m.criterion not in criteria:
            continue
        feats = m.standardiser.apply(response_features(responses, m.featurizer, m.numeric_columns))
        scores = np.asarray(jax.jit(reward)(m.params, jnp.asarray(feats)), np.float32)
        name = f"rm_{m.criterion}"
        if name in out.column_names:
            out = out.drop_columns([name])
        out = out.append_column(name, pa.array(scores, pa.float32()))
    return out
