"""Doctor checks that involve Prefect or Dask: the API a run would use and the Dask scheduler."""

from __future__ import annotations

import importlib
import os

import httpx

from ops.api_auth import auth_headers, refused_message
from ops.doctor import Check
from ops.runtime import DaskConfig


def check_prefect_api(api_url: str | None = None, timeout_s: float = 5.0) -> Check:
    """The Prefect API of ``PREFECT_API_URL``: healthy and its version; else the ephemeral mode.

    Without a configured URL, runs start one temporary local server each (``ops.runtime``);
    the check then only confirms that the server package is importable.
    """
    import prefect

    url = api_url or os.environ.get("PREFECT_API_URL")
    if not url:
        try:
            from prefect.server.api.server import SubprocessASGIServer  # noqa: F401
        except ImportError as exc:
            return Check("prefect api", False, f"ephemeral server unavailable ({exc})",
                         "pip install 'prefect>=3.9,<3.10', or set PREFECT_API_URL to a server")
        return Check("prefect api", True, f"ephemeral: each run starts a temporary server "
                     f"(client {prefect.__version__}); set PREFECT_API_URL to use a server")
    base = url.rstrip("/")
    fix = f"start it (`prefect server start`) or fix PREFECT_API_URL (now {url})"
    try:
        health = httpx.get(f"{base}/health", timeout=timeout_s)
        version = httpx.get(f"{base}/admin/version", headers=auth_headers(), timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Check("prefect api", False, f"{url} unreachable ({type(exc).__name__}: {exc})", fix)
    if health.status_code != 200:
        return Check("prefect api", False, f"{url}/health answered {health.status_code}", fix)
    if version.status_code in (401, 403):
        return Check("prefect api", False, refused_message(url, version.status_code),
                     "export PREFECT_API_AUTH_STRING=<user:password of the server>")
    server = version.json() if version.status_code == 200 else "unknown"
    ok = str(server).split(".")[:2] == prefect.__version__.split(".")[:2]
    return Check("prefect api", ok, f"{url} healthy, server {server}, client {prefect.__version__}",
                 "" if ok else "run a server of the client's minor version")


def check_dask(config: DaskConfig, timeout_s: float = 5.0) -> Check:
    """The configured Dask scheduler answers and has workers; a local cluster needs no check."""
    address = config.resolved_address()
    if not address and config.cluster_class:
        module, _, name = config.cluster_class.rpartition(".")
        try:
            getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            return Check("dask", False, f"cluster_class {config.cluster_class} cannot be imported ({exc})",
                         f"pip install {module.split('.')[0].replace('_', '-')} (or fix dask.cluster_class)")
        return Check("dask", True, f"each run starts {config.cluster_class} "
                     f"(adaptive {config.adapt_minimum}-{config.adapt_maximum})"
                     if config.adapt_maximum else f"each run starts {config.cluster_class}")
    if not address:
        return Check("dask", True, "no scheduler configured: each run starts distributed.LocalCluster "
                     f"({config.n_workers} workers x {config.threads_per_worker} threads)")
    from distributed import Client

    fix = (f"start the scheduler and workers at {address}, or unset RLHF_WIZARD_DASK_ADDRESS / "
           "dask.address to use a local cluster")
    try:
        with Client(address, timeout=timeout_s) as client:
            workers = len(client.scheduler_info(n_workers=-1)["workers"])
    except (OSError, TimeoutError) as exc:
        return Check("dask", False, f"{address} unreachable ({type(exc).__name__}: {exc})", fix)
    if workers == 0:
        return Check("dask", False, f"{address} has no workers", f"start workers: dask worker {address}")
    return Check("dask", True, f"{address}: {workers} workers")
