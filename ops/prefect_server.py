"""Local Prefect API servers: a temporary one per run, or a long-lived one that runs reuse.

A run needs a Prefect API. Without ``PREFECT_API_URL`` it used to start Prefect's own temporary
server, which imports the whole server application into the CLI process (seconds) before
launching it. Here the server is only *launched* (a uvicorn subprocess, nothing imported), so the
CLI keeps importing the pipeline while the server boots, and waits for it only when the flow
starts (:class:`TemporaryServer`).

``rlhf-wizard server start`` launches a long-lived server instead (:func:`start`), recorded in
``<home>/prefect-server/server.json``; every later run of that home reuses it
(:func:`running_url`), so a run pays no server start-up at all and its flow runs stay browsable in
the UI after the run ends. Its database lives beside the state file, so it never mixes with other
Prefect servers on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from ops.home import local_home
from rlhf_core.errors import ConfigError

DEFAULT_PORT = 4200
STATE_DIR = "prefect-server"
START_TIMEOUT_S = 120.0
_QUIET = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


class ServerError(ConfigError):
    """A local Prefect server could not be started, reached or stopped."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "<prefect server>")


@dataclass(frozen=True)
class ServerState:
    """What ``server.json`` records about a long-lived server."""

    pid: int
    port: int
    url: str
    log: str
    started_at: float


def state_dir() -> Path:
    """Where the long-lived server keeps its state, database and log: ``<home>/prefect-server``.

    ``home`` is ``RLHF_WIZARD_HOME`` when it is a local path, else ``.wizard`` (a remote lake keeps
    its local server state beside the working directory).
    """
    return local_home() / STATE_DIR


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def healthy(url: str, timeout_s: float = 2.0) -> bool:
    """Whether the API at ``url`` answers its health check."""
    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _uvicorn_command(port: int) -> list[str]:
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the prefect package is not installed; run `make install`")
    app_dir = Path(next(iter(spec.submodule_search_locations))).parent
    return [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]


def _wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                tail = ""
                if log is not None and log.exists():
                    lines = log.read_text(errors="replace").strip().splitlines()
                    tail = f": {lines[-1]}" if lines else ""
                raise ServerError(f"the Prefect server on {url} exited with code {code} while "
                                  f"starting{tail}" + (f"; see {log}" if log else ""))
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise ServerError(f"the Prefect server on {url} did not answer within {timeout_s:.0f} s"
                      + (f"; see {log}" if log else ""))


class TemporaryServer:
    """A Prefect API for one run: launched at once, awaited when needed, stopped at the end.

    Example:
        server = TemporaryServer()     # the subprocess boots while the caller imports
        url = server.wait()            # blocks until /api/health answers
        ...
        server.stop()
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        env = {**os.environ, **_QUIET, "PREFECT_UI_ENABLED": "0",
               "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        self.proc: subprocess.Popen | None = subprocess.Popen(
            _uvicorn_command(self.port), env=env, stdin=subprocess.DEVNULL)
        self._ready = False

    def wait(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Block until the server answers; returns its API URL.

        Raises:
            ServerError: It exited or did not answer in time.
        """
        if not self._ready:
            if self.proc is None:
                raise ServerError(f"the temporary Prefect server on {self.url} was stopped")
            try:
                _wait_healthy(self.proc, self.url, timeout_s, None)
            except ServerError:
                self.stop()
                raise
            self._ready = True
        return self.url

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the server (kill it after ``timeout_s``); idempotent."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_state(directory: Path | None = None) -> ServerState | None:
    """The recorded long-lived server, or None when none was started here."""
    path = (directory or state_dir()) / "server.json"
    try:
        return ServerState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_url(directory: Path | None = None) -> str | None:
    """The API URL of this home's long-lived server when it runs and answers, else None."""
    state = read_state(directory)
    if state is None or not _alive(state.pid) or not _is_prefect_server(state.pid):
        return None
    return state.url if healthy(state.url) else None


def start(port: int = DEFAULT_PORT, timeout_s: float = START_TIMEOUT_S,
          directory: Path | None = None) -> ServerState:
    """Start this home's long-lived Prefect server (with UI and services) in the background.

    Returns the running one when it is already up.

    Raises:
        ServerError: The port is taken by another process, or the server failed to start.
    """
    directory = directory or state_dir()
    state = read_state(directory)
    if state is not None and _alive(state.pid) and healthy(state.url):
        return state
    if port_in_use(port):
        raise ServerError(f"port {port} on 127.0.0.1 is in use by another process; choose "
                          "another with --port")
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "server.log"
    env = {**os.environ, **_QUIET,
           "PREFECT_API_DATABASE_CONNECTION_URL":
               f"sqlite+aiosqlite:///{directory / 'prefect.db'}"}
    env.pop("PREFECT_API_URL", None)
    prefect_cli = Path(sys.executable).with_name("prefect")
    command = ([str(prefect_cli)] if prefect_cli.exists() else [sys.executable, "-m", "prefect"])
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            [*command, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(proc, url, timeout_s, log)
    except ServerError:
        _stop_group(proc.pid)
        raise
    state = ServerState(pid=proc.pid, port=port, url=url, log=str(log), started_at=time.time())
    tmp = directory / ".server.json.tmp"
    tmp.write_text(json.dumps(asdict(state)))
    tmp.replace(directory / "server.json")
    return state


def _stop_group(pid: int, timeout_s: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _is_prefect_server(pid: int) -> bool:
    """Whether ``pid`` still is the server we started (a recycled pid is somebody else's)."""
    import psutil

    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "prefect" in cmdline and "server" in cmdline


def stop(directory: Path | None = None) -> ServerState | None:
    """Stop this home's long-lived server (its whole process group); returns what was stopped."""
    directory = directory or state_dir()
    state = read_state(directory)
    if state is None:
        return None
    if _alive(state.pid) and _is_prefect_server(state.pid):
        _stop_group(state.pid)
    (directory / "server.json").unlink(missing_ok=True)
    return state
