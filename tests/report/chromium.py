"""A minimal headless-Chromium driver over the DevTools protocol (websocket), for report tests.

Starts Debian's ``chromium`` in its own process group with a throwaway profile, talks CDP to one
page, and on exit closes the browser and makes sure no process of that group is left behind.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
INSTALL_HINT = "apt-get install -y chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1600",
         "--remote-debugging-port=0", "--remote-allow-origins=*")


def find_chromium() -> str | None:
    """Path of the Chromium executable, or None when it is not installed."""
    for candidate in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class PageLoad:
    """What happened while a page loaded.

    Attributes:
        console_errors: ``console.error`` messages and uncaught exceptions.
        log_errors: Browser log entries of level error (failed loads, CSP, ...).
        requests: Every URL the page requested.
    """

    console_errors: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Page:
    """One browser tab driven over a flattened CDP session."""

    def __init__(self, ws: ClientConnection, session: str) -> None:
        self._ws, self._session, self._next = ws, session, 1000
        self.load = PageLoad()

    def _record(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.load.console_errors.append(" ".join(str(a.get("value", a.get("description")))
                                                     for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.load.console_errors.append(details.get("exception", {}).get("description")
                                            or details.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.load.log_errors.append(f"{entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            self.load.requests.append(params.get("request", {}).get("url", ""))

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Send a command and return its result, recording events that arrive meanwhile."""
        self._next += 1
        ident = self._next
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params or {},
                                  "sessionId": self._session}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"CDP {method} failed: {msg['error']}")
                return msg.get("result", {})
            self._record(msg)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        """Block until ``event`` arrives (recording the others)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self._record(msg)
            if msg.get("method") == event:
                return msg.get("params", {})

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event, then let late events (errors) arrive."""
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 50)))")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return the value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """Save a full-page PNG screenshot to ``path``."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": clip}, timeout=60)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def _devtools_url(profile: Path, proc: subprocess.Popen, timeout: float) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode} before opening DevTools")
        if port_file.exists():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise TimeoutError(f"chromium did not open DevTools within {timeout} s")


def group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


@contextmanager
def chromium_page(executable: str, startup_timeout: float = 60.0) -> Iterator[tuple[Page, int]]:
    """Start headless Chromium and yield ``(page, process group id)``; always tears it all down."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        pgid = proc.pid
        try:
            with connect(_devtools_url(Path(profile), proc, startup_timeout), max_size=None,
                         open_timeout=startup_timeout) as ws:
                ws.send(json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}))
                target = _reply(ws, 1)["targetId"]
                ws.send(json.dumps({"id": 2, "method": "Target.attachToTarget",
                                    "params": {"targetId": target, "flatten": True}}))
                session = _reply(ws, 2)["sessionId"]
                yield Page(ws, session), pgid
                ws.send(json.dumps({"id": 3, "method": "Browser.close"}))
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(pgid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(pgid, signal.SIGKILL)
                    proc.wait(timeout=10)
            deadline = time.monotonic() + 10
            while group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)


def _reply(ws: ClientConnection, ident: int) -> dict[str, Any]:
    while True:
        msg = json.loads(ws.recv(timeout=30))
        if msg.get("id") == ident:
            if "error" in msg:
                raise RuntimeError(f"CDP command {ident} failed: {msg['error']}")
            return msg["result"]
