"""Serve every deployment of ``deployments/prefect.yaml`` from one local process.

``prefect.serve`` registers the deployments with the configured API and executes their runs
(from the UI's Run button, ``prefect deployment run``, or a schedule) in subprocesses of this
process. No work pool or worker is involved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ops.deployments import (
    PREFECT_FILE,
    PROJECT_ROOT,
    DeploymentSpec,
    load_deployments,
    schedule_objects,
)
from rlhf_core.errors import ConfigError
from rlhf_core.lake.store import Lake


def full_name(spec: DeploymentSpec, flow: Any) -> str:
    """``<flow-name>/<deployment-name>``, as the Prefect CLI and UI name a deployment."""
    return f"{flow.name}/{spec.name}"


def parse_interval_overrides(items: Sequence[str]) -> dict[str, float]:
    """Parse ``NAME=SECONDS`` items (NAME: ``flow/deployment`` or a flow name).

    Raises:
        ConfigError: An item is not ``NAME=SECONDS`` with a positive number.
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, seconds = item.partition("=")
        try:
            value = float(seconds)
        except ValueError:
            value = -1.0
        if not sep or not name or value <= 0:
            raise ConfigError(
                f"--interval {item!r}: expected NAME=SECONDS, e.g. validate-contract/on-demand=30",
                "<command line>")
        out[name] = value
    return out


def build_deployments(
    specs: Sequence[DeploymentSpec], interval_overrides: Mapping[str, float] | None = None
) -> list[Any]:
    """``RunnerDeployment`` objects for ``specs``.

    Args:
        specs: Parsed deployments.
        interval_overrides: ``{name: seconds}``: replace that deployment's schedules by one
            interval schedule anchored now (e.g. to watch a schedule fire in a test).

    Raises:
        ConfigError: An override names no deployment.
    """
    overrides = dict(interval_overrides or {})
    deployments = []
    for spec in specs:
        flow = spec.load_flow()
        name = full_name(spec, flow)
        seconds = overrides.pop(name, None) or overrides.pop(flow.name, None)
        if seconds:
            from prefect.schedules import Interval

            schedules = [Interval(timedelta(seconds=seconds), anchor_date=datetime.now(UTC))]
        else:
            schedules = schedule_objects(spec)
        deployments.append(flow.to_deployment(
            name=spec.name, description=spec.description, parameters=spec.parameters,
            schedules=schedules, tags=spec.tags, concurrency_limit=spec.concurrency_limit,
            enforce_parameter_schema=spec.enforce_parameter_schema, paused=spec.paused,
        ))
    if overrides:
        raise ConfigError(
            f"--interval names unknown deployments: {', '.join(sorted(overrides))}; use "
            "`rlhf-wizard serve --list` to see the names", str(PREFECT_FILE))
    return deployments


def adopt_registered(deployments: Sequence[Any]) -> list[str]:
    """Point deployments already registered (e.g. by ``prefect deploy``) at this process's code.

    Prefect's runner updates an existing deployment without its ``path`` and clears its pull
    steps, so one first registered by ``prefect deploy`` (path unset) could not load its flow when
    served. Setting the path the runner would have created it with closes that gap.

    Returns:
        Full names of the deployments adjusted.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.exceptions import ObjectNotFound

    adjusted = []
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            path = deployment._path  # what RunnerDeployment.apply() sends on creation
            if existing.path != path:
                client.update_deployment(existing.id, DeploymentUpdate(path=path))
                adjusted.append(name)
    return adjusted


def serve_all(
    prefect_file: str | Path = PREFECT_FILE,
    *,
    interval_overrides: Mapping[str, float] | None = None,
    limit: int | None = None,
    metrics_port: int | None = None,
    metrics_host: str | None = None,
) -> None:
    """Serve every deployment in ``prefect_file`` until interrupted (SIGINT / SIGTERM).

    Runs execute with the project root as working directory, so relative paths in parameters
    resolve as they do for ``prefect deploy`` runs. Blocks.

    Args:
        prefect_file: The deployments file.
        interval_overrides: See :func:`build_deployments`.
        limit: Most flow runs executing at once (None: no limit).
        metrics_port: Also serve Prometheus metrics of the lake on this port
            (:func:`ops.metrics.serve_metrics`); None: no exporter.
        metrics_host: Address the exporter binds (default ``$RLHF_WIZARD_METRICS_HOST`` or
            127.0.0.1).
    """
    from prefect import serve

    from ops.metrics import serve_metrics

    lake = Lake.from_env()  # before the chdir: a relative RLHF_WIZARD_HOME means this directory
    os.chdir(PROJECT_ROOT)
    deployments = build_deployments(load_deployments(prefect_file), interval_overrides)
    adopt_registered(deployments)
    with serve_metrics(metrics_port, metrics_host, lake=lake):
        serve(*deployments, limit=limit, print_starting_message=True)
