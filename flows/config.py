"""Pipeline configuration: one YAML preset (``configs/pipelines/*.yaml``) per environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML, YAMLError

from flows.runtime import DaskConfig
from rlhf_core.errors import ContractSchemaError

DEFAULT_PRESET = Path(__file__).resolve().parents[1] / "configs" / "pipelines" / "default.yaml"


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


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    """Read a preset (the default one when ``path`` is None).

    Raises:
        ContractSchemaError: Unreadable YAML or invalid values, naming the file and key.
    """
    path = Path(path or DEFAULT_PRESET)
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    except (OSError, YAMLError) as exc:
        raise ContractSchemaError(f"cannot read pipeline config ({exc})", str(path)) from exc
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ContractSchemaError(f"pipeline config {where}: {first['msg']}", str(path)) from exc
