"""Start services in their own process groups, stop them, and prove nothing was left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

QUIET_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """A subprocess in a new session (its own process group), logging to a file.

    Every process seen below it is remembered (:meth:`snapshot`), so :meth:`stop` can also reach
    children that moved to sessions of their own (Prefect starts flow runs that way).
    """

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], log: Path, cwd: Path | None = None):
        self.name = name
        self.log = log
        self._handle = log.open("wb")
        self.proc = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=self._handle,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.seen: dict[int, psutil.Process] = {}
        self.snapshot()

    def snapshot(self) -> None:
        """Remember the process and all its current descendants."""
        try:
            root = psutil.Process(self.proc.pid)
            for proc in [root, *root.children(recursive=True)]:
                self.seen.setdefault(proc.pid, proc)
        except psutil.NoSuchProcess:
            pass

    def alive(self) -> list[psutil.Process]:
        """Remembered processes that still run (zombies count as gone)."""
        out = []
        for proc in self.seen.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc)
            except psutil.NoSuchProcess:
                continue
        return out

    def tail(self, lines: int = 30) -> str:
        """The end of the log, for failure messages."""
        self._handle.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace_s: float = 20.0) -> list[psutil.Process]:
        """SIGTERM the group (then SIGKILL), then any remembered straggler; return survivors."""
        self.snapshot()
        groups = {self.proc.pid}
        for proc in self.seen.values():
            try:
                groups.add(os.getpgid(proc.pid))
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in groups:
                try:
                    os.killpg(group, sig)
                except ProcessLookupError:
                    continue
            deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.alive():
                break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._handle.close()
        return self.alive()


def wait_http_ok(url: str, timeout_s: float, service: Service) -> None:
    """Poll ``url`` until it answers 200; fail with the service's log when it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise AssertionError(f"{service.name} exited ({service.proc.returncode}):\n{service.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not up after {timeout_s} s:\n{service.tail()}")


def api_call(method: str, url: str, **kwargs) -> httpx.Response:
    """One Prefect API call, retried on 503 as Prefect's own client does (SQLite busy under load)."""
    for attempt in range(8):
        reply = httpx.request(method, url, timeout=15, **kwargs)
        if reply.status_code != 503:
            return reply
        time.sleep(0.5 * (attempt + 1))
    return reply


def wait_flow_run(api: str, run_id: str, timeout_s: float, service: Service | None = None) -> dict:
    """Poll a flow run until it is final; fail with its state (and ``service``'s log) on timeout."""
    deadline = time.monotonic() + timeout_s
    run: dict = {}
    while time.monotonic() < deadline:
        run = api_call("GET", f"{api}/flow_runs/{run_id}").json()
        if (run.get("state") or {}).get("type") in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return run
        time.sleep(0.5)
    log = f"\n{service.tail()}" if service is not None else ""
    raise AssertionError(f"flow run {run_id} not finished after {timeout_s} s: {run.get('state')}{log}")


def wait_deployment(api: str, name: str, serve: Service, timeout_s: float = 90) -> dict:
    """The deployment ``flow/name`` once ``serve`` has registered it (fail with its log if not)."""
    deadline = time.monotonic() + timeout_s
    reply = api_call("GET", f"{api}/deployments/name/{name}")
    while reply.status_code != 200 and time.monotonic() < deadline:
        assert serve.proc.poll() is None, serve.tail()
        time.sleep(1)
        reply = api_call("GET", f"{api}/deployments/name/{name}")
    assert reply.status_code == 200, f"serve did not register {name}:\n{serve.tail()}"
    return reply.json()


def processes_with_env(name: str, value: str) -> list[psutil.Process]:
    """Every live process (other than this one) started with ``name=value`` in its environment."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(name) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@contextmanager
def prefect_server(home: Path, log: Path, **settings: str) -> Iterator[tuple[str, Service]]:
    """A real ``prefect server start`` on 127.0.0.1 with its own ``PREFECT_HOME``, no UI, and the
    given ``PREFECT_*`` settings; yields ``(api_url, service)`` and proves on exit that none of
    its processes is left."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(QUIET_ENV, PREFECT_HOME=str(home), PREFECT_UI_ENABLED="false", **settings)
    prefect = str(Path(sys.executable).with_name("prefect"))
    service = Service("prefect server", [prefect, "server", "start", "--host", "127.0.0.1",
                                         "--port", str(port)], env, log)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/api/health", 150, service)
        yield f"http://127.0.0.1:{port}/api", service
    finally:
        survivors = service.stop()
    assert not survivors, f"processes left behind by the server: {survivors}"
    assert not processes_with_env("PREFECT_HOME", str(home)), "a process of the server is still running"
