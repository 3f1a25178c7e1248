"""Pipeline configuration: one YAML preset per environment.

The shipped presets (``default``, ``kubernetes``, ``slurm``) are package data in ``ops/presets/``,
read with :mod:`importlib.resources` so an installed wheel finds them; ``--config`` takes any file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema
from ruamel.yaml import YAML, YAMLError

from ops.runtime import DaskConfig
from rlhf_core.errors import ConfigError
from rlhf_core.security.confine import ConfinementConfig

PRESET_DIR = resources.files("ops") / "presets"
"""The shipped presets (package data): ``default.yaml``, ``kubernetes.yaml``, ``slurm.yaml``."""
DEFAULT_PRESET = PRESET_DIR / "default.yaml"


class QualityConfig(BaseModel):
    """Quality gates: the share of failing rows above which a run stops."""

    model_config = ConfigDict(extra="forbid")

    max_failure_rate: float = Field(default=0.05, ge=0.0, le=1.0)


class ScoringConfig(BaseModel):
    """How responses are split into shards for scoring."""

    model_config = ConfigDict(extra="forbid")

    shard_rows: int = Field(default=250_000, ge=1)
    differential_check: bool = True


class PipelineConfig(BaseModel):
    """Everything a pipeline run needs besides the contract and the data."""

    model_config = ConfigDict(extra="forbid")

    quality: QualityConfig = QualityConfig()
    scoring: ScoringConfig = ScoringConfig()
    dask: DaskConfig = DaskConfig()
    # Where run parameters may point (ops/confinement.py). A worker enforces its own preset's
    # section, never the one a run's ``config`` parameter carries: hidden from the run form.
    confinement: SkipJsonSchema[ConfinementConfig] = Field(default_factory=ConfinementConfig,
                                                           exclude=True)


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    """Read a preset (the default one when ``path`` is None).

    Raises:
        ConfigError: Unreadable YAML or invalid values, naming the file and key.
    """
    path = Path(path) if path else DEFAULT_PRESET
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"cannot read pipeline config ({exc})", str(path)) from exc
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"pipeline config {where}: {first['msg']}", str(path)) from exc
