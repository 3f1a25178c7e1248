"""Register ``deployments/prefect.yaml`` with a Prefect server: work pools, then ``prefect deploy``.

The registration itself is Prefect's own ``prefect deploy --all`` on the same file, run from the
project root, so what ``rlhf-wizard deploy`` registers is exactly what the file says.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import subprocess
import sys
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import httpx

from ops.api_auth import auth_headers, check_access, refused_message
from ops.deployments import PREFECT_FILE, PROJECT_ROOT, DeploymentSpec
from rlhf_core.errors import DeploymentError
from rlhf_core.lake.fs import is_local
from rlhf_core.lake.store import ENV_HOME, Lake

DEPLOY_TIMEOUT_S = 300


def require_api_url() -> str:
    """``PREFECT_API_URL``, else this home's long-lived server (exported for the ``prefect``
    subprocesses); deployments need a server, not a temporary one. Access is checked once.

    Raises:
        DeploymentError: Neither is there.
        ApiAccessError: The API refuses our credential (``PREFECT_API_AUTH_STRING``).
    """
    from ops.prefect_server import running_url

    url = os.environ.get("PREFECT_API_URL") or running_url()
    if not url:
        raise DeploymentError(
            "PREFECT_API_URL is not set and no local server runs: start one with `rlhf-wizard "
            "server start` (or `prefect server start` and export PREFECT_API_URL)")
    os.environ["PREFECT_API_URL"] = url
    check_access(url)
    return url.rstrip("/")


def export_lake_home() -> str:
    """Make ``RLHF_WIZARD_HOME`` absolute in this process's environment and return it.

    Deployments run from the project root, so a relative lake root would move.
    """
    lake = Lake.from_env()
    home = str(Path(lake.root).resolve()) if is_local(lake.fs) and "://" not in lake.root else lake.root
    os.environ[ENV_HOME] = home
    return home


INCOMING = "incoming"
"""The lake's folder for input files: ``<RLHF_WIZARD_HOME>/incoming/``, where the deployments'
default ``data``/``source`` files are expected (see the header of ``deployments/prefect.yaml``)."""
_INPUT_KEYS = ("data", "source")


def incoming_inputs(specs: Sequence[DeploymentSpec], home: str) -> list[str]:
    """The default input files of ``specs`` that lie in ``<home>/incoming/`` (sorted, unique).

    ``home`` is the lake root the templates were resolved with (:func:`export_lake_home`).
    """
    prefix = f"{home.rstrip('/')}/{INCOMING}/"
    found = set()
    for spec in specs:
        params = spec.parameters.get("params", {})
        for key in _INPUT_KEYS:
            value = params.get(key) if isinstance(params, dict) else None
            value = value.get("path") if isinstance(value, dict) else value
            if isinstance(value, str) and value.startswith(prefix):
                found.add(value)
    return sorted(found)


def ensure_incoming(specs: Sequence[DeploymentSpec], home: str) -> list[str]:
    """Create ``<home>/incoming/`` and the folders of ``specs``' default input files in it.

    Returns:
        The folders (existing ones included), so the caller can tell the user where to put the
        input files; empty when no deployment reads a file from there.

    Raises:
        DeploymentError: A folder cannot be created.
    """
    root = home.rstrip("/")
    folders = sorted({posixpath.dirname(p.removeprefix(f"{root}/"))
                      for p in incoming_inputs(specs, home)})
    lake = Lake(home)
    for folder in folders:
        try:
            lake.fs.create_dir(lake.path(folder), recursive=True)
        except OSError as exc:
            raise DeploymentError(f"cannot create the incoming folder {root}/{folder} ({exc}); "
                                  f"check {ENV_HOME} and its permissions") from exc
    return [f"{root}/{folder}" for folder in folders]


def select_deployments(specs: Sequence[DeploymentSpec], names: Sequence[str]) -> list[DeploymentSpec]:
    """The specs ``prefect deploy --name`` selects: all when ``names`` is empty, else those whose
    ``flow/deployment`` name or deployment name matches a pattern (``*`` wildcards)."""
    if not names:
        return list(specs)
    return [s for s in specs if any(
        fnmatch(f"{s.load_flow().name}/{s.name}", n) or fnmatch(s.name, n) for n in names)]


def ensure_work_pools(specs: Sequence[DeploymentSpec]) -> list[str]:
    """Create the work pools the deployments target that the server does not have yet.

    Returns:
        Names of the pools created (each with its type's default base job template).

    Raises:
        DeploymentError: A pool cannot be created (unknown type, server error).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    pools = {s.work_pool.name: s.work_pool.type for s in specs if s.work_pool is not None}
    created = []
    with get_client(sync_client=True) as client:
        for name, kind in sorted(pools.items()):
            template = asyncio.run(get_default_base_job_template_for_infrastructure_type(kind))
            if template is None:
                raise DeploymentError(
                    f"work pool {name}: type {kind!r} is not available here; install its worker "
                    "package (e.g. prefect-kubernetes) or use the process pool")
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type=kind, base_job_template=template))
            except ObjectAlreadyExists:
                continue
            created.append(name)
    return created


def run_prefect_deploy(prefect_file: str | Path = PREFECT_FILE, names: Sequence[str] = ()) -> str:
    """Run ``prefect --no-prompt deploy`` on ``prefect_file`` from the project root.

    Args:
        prefect_file: The deployments file.
        names: Deployment name patterns (``flow/deployment``); all deployments when empty.

    Returns:
        Prefect's output.

    Raises:
        DeploymentError: ``prefect deploy`` failed (with the tail of its output).
    """
    selector = [arg for name in names for arg in ("--name", name)] or ["--all"]
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", *selector,
               "--prefect-file", str(Path(prefect_file).resolve())]
    try:
        # The file is the truth: an empty `schedules:` clears schedules left from earlier deploys.
        env = {**os.environ, "PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY": "true"}
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True,
                              text=True, timeout=DEPLOY_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DeploymentError(f"prefect deploy took over {DEPLOY_TIMEOUT_S} s; is the API at "
                              f"{os.environ.get('PREFECT_API_URL')} responsive?") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-4:])
        raise DeploymentError(f"prefect deploy failed (exit {done.returncode}): {tail}")
    return output


def list_deployments(api_url: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Deployments registered on the server, with their flow names (``POST /deployments/filter``).

    Raises:
        DeploymentError: The API does not answer.
    """
    headers = auth_headers()
    try:
        replies = [httpx.post(f"{api_url}/{kind}/filter", json={}, headers=headers,
                              timeout=timeout_s) for kind in ("flows", "deployments")]
        for reply in replies:
            if reply.status_code in (401, 403):
                raise DeploymentError(refused_message(api_url, reply.status_code))
            reply.raise_for_status()
        flows, rows = (reply.json() for reply in replies)
    except (httpx.HTTPError, ValueError) as exc:
        raise DeploymentError(f"cannot list deployments at {api_url} ({exc})") from exc
    flow_names = {f["id"]: f["name"] for f in flows}
    return [{**row, "flow_name": flow_names.get(row["flow_id"], "?")} for row in rows]


def missing_deployments(specs: Sequence[DeploymentSpec], registered: Sequence[dict[str, Any]]) -> list[str]:
    """``entrypoint (name)`` of every spec that has no registered deployment."""
    have = {(row.get("entrypoint"), row.get("name")) for row in registered}
    return [f"{s.entrypoint} ({s.name})" for s in specs if (s.entrypoint, s.name) not in have]
