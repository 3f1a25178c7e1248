"""Fitted reward models as Arrow rows (Parquet-friendly: lists of floats, JSON strings).

One row per model: ``criterion``, ``model_id``, ``hidden``, ``l2``, ``featurizer`` (JSON),
``numeric_columns``, ``dense_start``, ``std_mean`` / ``std_scale`` (the dense-column
standardiser), and the head's arrays as ``param_names`` / ``param_shapes`` / ``param_values``
(flattened float32).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pyarrow as pa

from rlhf_core.errors import SchemaMismatchError
from rlhf_core.lake.catalog import MODEL_SCHEMA
from rlhf_core.preference.dataset import Standardiser
from rlhf_core.preference.features import FeaturizerConfig
from rlhf_core.preference.model import Head, LinearHead, MLPHead


@dataclass(frozen=True)
class RewardModel:
    """A fitted head plus everything needed to featurise new responses the same way."""

    criterion: str
    model_id: str
    params: Head
    l2: float
    featurizer: FeaturizerConfig
    numeric_columns: tuple[str, ...]
    standardiser: Standardiser


def models_to_table(models: list[RewardModel]) -> pa.Table:
    """Serialise models to one Arrow table with :data:`MODEL_SCHEMA`."""
    rows = []
    for m in models:
        names = list(m.params._fields)
        arrays = [np.asarray(getattr(m.params, n), np.float32) for n in names]
        rows.append(
            {
                "criterion": m.criterion,
                "model_id": m.model_id,
                "hidden": int(arrays[0].shape[1]) if isinstance(m.params, MLPHead) else 0,
                "l2": float(m.l2),
                "featurizer": json.dumps(m.featurizer.to_dict(), sort_keys=True),
                "numeric_columns": list(m.numeric_columns),
                "dense_start": m.standardiser.start,
                "std_mean": m.standardiser.mean.tolist(),
                "std_scale": m.standardiser.scale.tolist(),
                "param_names": names,
                "param_shapes": [list(a.shape) for a in arrays],
                "param_values": [a.ravel().tolist() for a in arrays],
            }
        )
    return pa.Table.from_pylist(rows, schema=MODEL_SCHEMA)


def models_from_table(table: pa.Table) -> list[RewardModel]:
    """Inverse of :func:`models_to_table`.

    Raises:
        SchemaMismatchError: If the table lacks a model column.
    """
    missing = [f.name for f in MODEL_SCHEMA if f.name not in table.column_names]
    if missing:
        raise SchemaMismatchError(
            f"reward-model table lacks column(s) {missing}; write it with models_to_table"
        )
    models = []
    for row in table.to_pylist():
        arrays = {
            n: jnp.asarray(np.asarray(v, np.float32).reshape(s))
            for n, s, v in zip(row["param_names"], row["param_shapes"], row["param_values"], strict=True)
        }
        head: Head = LinearHead(**arrays) if row["hidden"] == 0 else MLPHead(**arrays)
        models.append(
            RewardModel(
                criterion=row["criterion"],
                model_id=row["model_id"],
                params=head,
                l2=row["l2"],
                featurizer=FeaturizerConfig.from_dict(json.loads(row["featurizer"])),
                numeric_columns=tuple(row["numeric_columns"]),
                standardiser=Standardiser(
                    row["dense_start"],
                    np.asarray(row["std_mean"], np.float32),
                    np.asarray(row["std_scale"], np.float32),
                ),
            )
        )
    return models
