"""Run-time plumbing shared by the flows: the Prefect API for a run and the Dask task runner.

Start-up cost is planned (docs/architecture.md#runtime): a run uses ONE Prefect API — the one in
``PREFECT_API_URL`` when configured, else this home's long-lived server (``rlhf-wizard server
start``), else one temporary local server launched early (:class:`PrefectApi`) — and the Dask
workers inherit its address through the environment, so no worker starts a server of its own.
Small runs stay in-process (:func:`runs_in_process`) and compiled JAX programs persist across runs
(:func:`enable_compilation_cache`).

Console noise is planned too: Dask (``distributed``) and Great Expectations log INFO lines on
every run; :func:`quiet_library_logs` keeps them off the console (not out of other handlers)
unless ``RLHF_WIZARD_VERBOSE`` is set (``--verbose``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ops.home import local_home
from rlhf_core.errors import ConfigError

DASK_ADDRESS_ENV = "RLHF_WIZARD_DASK_ADDRESS"
DASK_WORKERS_ENV = "RLHF_WIZARD_DASK_WORKERS"
VERBOSE_ENV = "RLHF_WIZARD_VERBOSE"
QUIET_LOGGERS = ("distributed", "great_expectations")
"""Libraries whose INFO (and below) records stay off the console unless verbose."""

_QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


JAX_CACHE_ENV = {
    "JAX_COMPILATION_CACHE_DIR": None,  # set by enable_compilation_cache
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


def enable_compilation_cache(directory: Path | None = None) -> Path:
    """Keep JAX's compiled programs across runs: XLA's persistent compilation cache.

    A small run is dominated by compiling the same scoring, Pareto, calibration and bootstrap
    programs every time; with the cache a later run loads them instead. Configured through the
    environment, so spawned Dask workers (which import JAX themselves) share it; applied directly
    when JAX is already imported here. Settings the user exported win. Every program is cached
    (JAX's default skips those compiling in under a second, which are all of ours).

    Args:
        directory: The cache directory (default ``<local home>/jax-cache``).

    Returns:
        The cache directory in use.
    """
    import sys

    directory = Path(os.environ.get("JAX_COMPILATION_CACHE_DIR")
                     or directory or local_home() / "jax-cache")
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in JAX_CACHE_ENV.items():
        os.environ.setdefault(key, value if value is not None else str(directory))
    if "jax" in sys.modules:
        import jax

        jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
        jax.config.update("jax_persistent_cache_min_entry_size_bytes",
                          int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]))
    return directory


class DaskConfig(BaseModel):
    """Where score shards run.

    Attributes:
        address: An existing scheduler (``tcp://host:8786``); overrides the local cluster. Also
            read from ``RLHF_WIZARD_DASK_ADDRESS``.
        n_workers: Worker processes of the local cluster.
        threads_per_worker: Threads per worker (1: each JAX shard owns its core).
        memory_limit: Per-worker memory limit of the local cluster (Dask syntax, e.g. ``4GiB``).
        adapt_minimum: Lower bound for adaptive scaling (with ``adapt_maximum``).
        adapt_maximum: Upper bound for adaptive scaling; ``None`` disables adaptivity.
        cluster_class: Dotted path of another Dask cluster manager (e.g.
            ``dask_kubernetes.operator.KubeCluster``, ``dask_jobqueue.SLURMCluster``); the local
            cluster when ``None``. Ignored when a scheduler address is set.
        cluster_kwargs: Keyword arguments of ``cluster_class`` (passed as given).
        in_process_max_rows: Runs of at most this many rows use an in-process cluster (one worker
            whose ``n_workers * threads_per_worker`` threads run the same tasks) instead of
            spawning worker processes: below one scoring shard there is no parallelism for
            processes to add, only their start-up (and JAX compilation) in each. ``0`` always
            spawns. Ignored with a scheduler address, ``cluster_class`` or adaptive bounds.

    ``n_workers`` not given explicitly is read from ``RLHF_WIZARD_DASK_WORKERS`` (default 2).
    """

    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    n_workers: int = Field(default=2, ge=1, le=512)
    threads_per_worker: int = Field(default=1, ge=1, le=64)
    memory_limit: str = "auto"
    adapt_minimum: int | None = Field(default=None, ge=0)
    adapt_maximum: int | None = Field(default=None, ge=1)
    cluster_class: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    cluster_kwargs: dict[str, Any] = Field(default_factory=dict)
    in_process_max_rows: int = Field(default=250_000, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _workers_from_env(cls, data: Any) -> Any:
        env = os.environ.get(DASK_WORKERS_ENV)
        if env and isinstance(data, dict) and data.get("n_workers") is None:
            data = {**data, "n_workers": env}
        return data

    def resolved_address(self) -> str | None:
        """The scheduler address from config, else from the environment, else None (local)."""
        return self.address or os.environ.get(DASK_ADDRESS_ENV) or None


def runs_in_process(config: DaskConfig, rows: int | None) -> bool:
    """Whether a run of ``rows`` rows uses the in-process cluster (see ``in_process_max_rows``)."""
    return (rows is not None and rows <= config.in_process_max_rows
            and not config.resolved_address() and not config.cluster_class
            and config.adapt_maximum is None)


def make_task_runner(config: DaskConfig, rows: int | None = None) -> Any:
    """Build the ``DaskTaskRunner`` for ``config`` (and a run of ``rows`` rows, when known).

    Also applies :func:`quiet_library_logs`, so a process that runs a flow without
    :func:`prefect_api` (a served or worker-executed deployment) keeps the same quiet console.

    Raises:
        ConfigError: ``cluster_class`` cannot be imported.

    Returns:
        A ``prefect_dask.DaskTaskRunner`` bound to an existing scheduler, to ``cluster_class``
        (e.g. Kubernetes or a batch queue), to an in-process cluster for a small run, or to a
        local cluster of spawned worker processes (one thread each by default); adaptive when
        bounds are set.
    """
    from prefect_dask import DaskTaskRunner

    quiet_library_logs()

    address = config.resolved_address()
    if address:
        return DaskTaskRunner(address=address)
    if runs_in_process(config, rows):
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": None,
                            "threads_per_worker": config.n_workers * config.threads_per_worker},
        )
    adapt = None
    if config.adapt_maximum is not None:
        adapt = {"minimum": config.adapt_minimum or 1, "maximum": config.adapt_maximum}
    if config.cluster_class:
        try:
            return DaskTaskRunner(cluster_class=config.cluster_class,
                                  cluster_kwargs=dict(config.cluster_kwargs), adapt_kwargs=adapt)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"dask.cluster_class {config.cluster_class} cannot be imported ({exc}); install "
                "its package (dask-kubernetes, dask-jobqueue) or fix the name", "<pipeline config>",
            ) from exc
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": config.n_workers,
            "threads_per_worker": config.threads_per_worker,
            "processes": True,
            "memory_limit": config.memory_limit,
            "dashboard_address": None,
        },
        adapt_kwargs=adapt,
    )


class PrefectApi:
    """The one Prefect API of a run, for this process and its children.

    Chosen when created, in this order: ``PREFECT_API_URL`` when set (a real server or Prefect
    Cloud); this home's long-lived server when ``rlhf-wizard server start`` runs one
    (:func:`ops.prefect_server.running_url`); otherwise a temporary local server, *launched at
    once* so it boots while the caller goes on importing, and awaited on ``__enter__``. Inside the
    block ``PREFECT_API_URL`` is exported, so spawned Dask workers use the same API; logs are
    flushed before a temporary server stops. Library INFO logs stay off the console
    (:func:`quiet_library_logs`).

    Example:
        api = PrefectApi()          # before the heavy imports
        from flows.contract_pipeline import contract_pipeline
        with api as url:
            contract_pipeline(params)
    """

    def __init__(self, timeout_s: float = 120.0) -> None:
        from ops.prefect_server import TemporaryServer, running_url

        for key, value in _QUIET_ENV.items():
            os.environ.setdefault(key, value)
        self.timeout_s = timeout_s
        self.configured = os.environ.get("PREFECT_API_URL") or None
        self.local = None if self.configured else running_url()
        if not self.configured:
            from ops.api_auth import share_server_credential

            share_server_credential()  # a local server inherits the server auth string
        self.server = None if (self.configured or self.local) else TemporaryServer()
        self.kind = "configured" if self.configured else "local" if self.local else "temporary"
        self._settings: Any = None
        self._exported = False

    def __enter__(self) -> str:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from ops.api_auth import check_access

        quiet_library_logs()
        try:
            url = self.configured or self.local or self.server.wait(self.timeout_s)
            check_access(url)  # a missing or wrong credential: one line, before any flow starts
        except BaseException:
            self.close()
            raise
        if not self.configured:
            os.environ["PREFECT_API_URL"] = url
            self._exported = True
        self._settings = temporary_settings(updates={PREFECT_API_URL: url})
        self._settings.__enter__()
        return url

    def __exit__(self, *exc: object) -> None:
        try:
            if self.server is not None:
                _flush_api_logs()
        finally:
            try:
                if self._settings is not None:
                    self._settings.__exit__(*exc)
                    self._settings = None
            finally:
                self.close()

    def close(self) -> None:
        """Stop a temporary server and un-export its URL; idempotent (safe before ``__enter__``)."""
        if self._exported:
            os.environ.pop("PREFECT_API_URL", None)
            self._exported = False
        if self.server is not None:
            self.server.stop()


def prefect_api(timeout_s: int = 120) -> PrefectApi:
    """The run's Prefect API as a context manager yielding its URL (see :class:`PrefectApi`)."""
    return PrefectApi(timeout_s)


def _flush_api_logs() -> None:
    """Send buffered Prefect logs to the API before it goes away."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)


class _QuietLibraryFilter(logging.Filter):
    """Drops records below WARNING from the :data:`QUIET_LOGGERS` namespaces."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not any(record.name == name or record.name.startswith(f"{name}.")
                       for name in QUIET_LOGGERS)


_QUIET_FILTER = _QuietLibraryFilter()


def verbose_logs() -> bool:
    """Whether ``RLHF_WIZARD_VERBOSE`` asks for library INFO logs on the console (``--verbose``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def quiet_library_logs(verbose: bool | None = None) -> None:
    """Keep Dask (``distributed``) and Great Expectations INFO (and below) off the console.

    Only console handlers are filtered: Prefect's console handler on the root logger and any
    stderr handler Dask attached to the ``distributed`` logger itself. The loggers keep their
    levels, so every other handler (Prefect's API handler for loggers named in
    ``PREFECT_LOGGING_EXTRA_LOGGERS``, files, pytest's capture) receives the records as before;
    warnings and errors still reach the console. Worker processes of the local cluster already
    keep their ``distributed`` records below WARNING off stderr (LocalCluster ``silence_logs``).
    Idempotent; call it after Prefect has configured logging (importing ``prefect`` does).

    Args:
        verbose: True lets the records through again; None reads ``RLHF_WIZARD_VERBOSE``.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    if verbose is None:
        verbose = verbose_logs()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    for name in QUIET_LOGGERS:
        handlers += [h for h in logging.getLogger(name).handlers
                     if type(h) is logging.StreamHandler or isinstance(h, PrefectConsoleHandler)]
    for handler in handlers:
        if verbose:
            handler.removeFilter(_QUIET_FILTER)
        else:
            handler.addFilter(_QUIET_FILTER)
