"""The deployments of ``deployments/prefect.yaml``, read once for ``serve``, ``deploy`` and tests.

``prefect.yaml`` is the single source of truth: ``prefect deploy --all`` registers it for work
pools, and :mod:`ops.serve` builds the same deployments (names, parameters, schedules, tags)
for a local ``serve`` process from the parsed file. Templates are resolved exactly as
``prefect deploy`` resolves them (``{{ $ENV_VAR }}`` from the environment, via Prefect's own
``apply_values``).
"""

from __future__ import annotations

import importlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML, YAMLError

from rlhf_core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PREFECT_FILE = PROJECT_ROOT / "deployments" / "prefect.yaml"


class ScheduleSpec(BaseModel):
    """One schedule entry of a deployment (exactly one of ``cron`` and ``interval``)."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = None
    interval: float | None = Field(default=None, gt=0, description="seconds")
    anchor_date: datetime | None = None
    timezone: str | None = None
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("a schedule needs exactly one of `cron` and `interval`")
        return self


class WorkPoolSpec(BaseModel):
    """A work pool a deployment targets (``type`` is ours; Prefect's loader ignores it)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str = "process"
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)


class DeploymentSpec(BaseModel):
    """One entry of ``deployments:`` after template resolution.

    Attributes:
        name: Deployment name (the part after ``<flow-name>/``).
        entrypoint: ``path/to/file.py:function`` relative to the project root.
        parameters: Default parameters (``{"params": {...}}`` for this project's flows).
        schedules: Cron / interval schedules (empty: runs only on demand).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    entrypoint: str = Field(pattern=r"^[\w./-]+\.py:[A-Za-z_]\w*$")
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    concurrency_limit: int | None = Field(default=None, ge=1)
    enforce_parameter_schema: bool = True
    paused: bool = False
    work_pool: WorkPoolSpec | None = None

    @property
    def module(self) -> str:
        """Dotted module of the entrypoint (``flows/x.py`` -> ``flows.x``)."""
        return self.entrypoint.split(":")[0].removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        """Name of the flow function in :attr:`module`."""
        return self.entrypoint.split(":")[1]

    def load_flow(self) -> Any:
        """Import the flow object (from the project's packages, so models stay one class).

        Raises:
            ConfigError: The entrypoint does not name a Prefect flow.
        """
        from prefect import Flow

        try:
            flow = getattr(importlib.import_module(self.module), self.function)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"deployment {self.name!r}: entrypoint {self.entrypoint} cannot be imported ({exc}); "
                "fix the path or function name", str(PREFECT_FILE)) from exc
        if not isinstance(flow, Flow):
            raise ConfigError(
                f"deployment {self.name!r}: {self.entrypoint} is not a @flow", str(PREFECT_FILE))
        return flow


def read_prefect_file(path: str | Path = PREFECT_FILE) -> dict[str, Any]:
    """The raw document (anchors and merge keys expanded, templates untouched).

    Raises:
        ConfigError: The file cannot be read or is not a mapping.
    """
    path = Path(path)
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"cannot read deployments file ({exc})", str(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("deployments"), list):
        raise ConfigError("a prefect.yaml needs a `deployments:` list", str(path))
    return data


def load_deployments(path: str | Path = PREFECT_FILE) -> list[DeploymentSpec]:
    """Parse and resolve every deployment of ``path``.

    ``{{ $VAR }}`` placeholders take their values from ``os.environ`` (Prefect's ``apply_values``
    reads environment placeholders from there); unset ones stay as written.

    Args:
        path: The prefect.yaml.

    Returns:
        The deployments in file order.

    Raises:
        ConfigError: Invalid YAML or an entry that does not match :class:`DeploymentSpec`
            (names the entry and key).
    """
    from prefect.utilities.templating import apply_values

    raw = read_prefect_file(path)
    env = dict(os.environ)
    specs = []
    for index, entry in enumerate(raw["deployments"]):
        resolved = apply_values(entry, env, remove_notset=False)
        try:
            specs.append(DeploymentSpec.model_validate(resolved))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            label = entry.get("name", "?") if isinstance(entry, dict) else "?"
            raise ConfigError(
                f"deployments[{index}] ({label}).{where}: {first['msg']}", str(path)) from exc
    return specs


def schedule_objects(spec: DeploymentSpec) -> list[Any]:
    """Prefect ``Schedule`` objects for ``spec.schedules``."""
    from prefect.schedules import Cron, Interval

    out = []
    for item in spec.schedules:
        if item.cron is not None:
            out.append(Cron(item.cron, timezone=item.timezone, active=item.active,
                            parameters=item.parameters or None))
        else:
            out.append(Interval(timedelta(seconds=item.interval or 0), anchor_date=item.anchor_date,
                                timezone=item.timezone, active=item.active,
                                parameters=item.parameters or None))
    return out
