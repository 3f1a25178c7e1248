"""A real reward-model HTTP server for tests and benchmarks, with fault injection.

Run as ``python -m tests.remote.server --port N`` (uvicorn on 127.0.0.1). The scoring model is
deterministic (:func:`true_score`, a hash of the pair) and the server speaks four wire formats:
``/predict`` (TEI), ``/score`` (vLLM, answers in reverse index order), ``/pooling`` (vLLM reward)
and ``/generic`` (``{"batch": {"items": [{"q", "a"}]}}`` -> ``{"result": {"outputs": [{"reward"}]}}``).

Admin endpoints: ``GET /admin/health``; ``GET /admin/stats`` (request counts by outcome; with
``?rows=1`` the per-pair hit counts); ``POST /admin/faults`` (JSON merged into the fault settings
below); ``POST /admin/reset`` (counters and faults back to defaults).

Fault settings: ``latency_s`` (every scoring request), ``p_503``, ``p_429`` (with ``Retry-After:
retry_after``), ``p_slow`` (sleep ``slow_s``), ``p_reset`` (connection dropped mid-body),
``p_malformed``, ``p_wrong_count``, ``p_nan``; ``outage`` (every scoring request gets 503);
``outage_after`` (503 for every request after that many); ``require_token`` (401 without
``Authorization: Bearer <token>``); ``seed``. Deterministic
per-batch faults: a prompt starting with ``@malformed``, ``@wrong_count``, ``@nan``, ``@string``
or ``@bad_request`` poisons its whole batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

DEFAULT_FAULTS: dict[str, Any] = {
    "latency_s": 0.0, "p_503": 0.0, "p_429": 0.0, "retry_after": "1", "p_slow": 0.0,
    "slow_s": 2.0, "p_reset": 0.0, "p_malformed": 0.0, "p_wrong_count": 0.0, "p_nan": 0.0,
    "outage": False, "outage_after": None, "require_token": None, "seed": 0,
}
MARKERS = ("@malformed", "@wrong_count", "@nan", "@string", "@bad_request")


def pair_key(prompt: str, response: str) -> str:
    """Stable id of one (prompt, response) pair (used in hit counts)."""
    return hashlib.sha256(f"{prompt}\x1f{response}".encode()).hexdigest()[:16]


def true_score(prompt: str, response: str) -> float:
    """The model: a deterministic score in [-4, 4) from the pair's hash."""
    digest = hashlib.sha256(f"{prompt}\x1f{response}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 * 8.0 - 4.0


class State:
    """Mutable server state: faults, RNG and counters."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.faults = dict(DEFAULT_FAULTS)
        self.rng = random.Random(0)
        self.outcomes: Counter[str] = Counter()
        self.row_hits: Counter[str] = Counter()
        self.rows = 0
        self.max_in_flight = self.in_flight
        self.served = 0

    def set_faults(self, update: dict[str, Any]) -> None:
        unknown = set(update) - set(DEFAULT_FAULTS)
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}")
        self.faults.update(update)
        if "seed" in update:
            self.rng = random.Random(update["seed"])

    def roll(self, name: str) -> bool:
        return self.faults[name] > 0 and self.rng.random() < self.faults[name]


STATE = State()


def _pairs(path: str, body: Any) -> list[tuple[str, str]]:
    if path == "/predict":
        return [(p, r) for p, r in body["inputs"]]
    if path == "/score":
        return list(zip(body["text_1"], body["text_2"], strict=True))
    if path == "/pooling":
        return [tuple(text.split("\n", 1)) for text in body["input"]]  # type: ignore[misc]
    return [(item["q"], item["a"]) for item in body["batch"]["items"]]


def _format(path: str, scores: list[Any], model: str) -> Any:
    if path == "/predict":
        return [[{"score": s, "label": "LABEL_0"}] for s in scores]
    if path == "/score":
        data = [{"index": i, "object": "score", "score": s} for i, s in enumerate(scores)]
        return {"id": "score-1", "object": "list", "model": model, "data": data[::-1],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    if path == "/pooling":
        return {"data": [{"index": i, "object": "pooling", "data": [s]} for i, s in enumerate(scores)]}
    return {"result": {"outputs": [{"reward": s} for s in scores]}}


async def _send(send: Any, status: int, payload: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + list(headers)})
    await send({"type": "http.response.body", "body": payload})


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _admin(scope: Any, body: bytes, send: Any) -> None:
    path = scope["path"]
    if path == "/admin/health":
        return await _send(send, 200, _json({"ok": True}))
    if path == "/admin/stats":
        stats: dict[str, Any] = {"requests": sum(STATE.outcomes.values()),
                                 "outcomes": dict(STATE.outcomes), "rows": STATE.rows,
                                 "in_flight": STATE.in_flight, "max_in_flight": STATE.max_in_flight}
        if b"rows=1" in scope.get("query_string", b""):
            stats["row_hits"] = dict(STATE.row_hits)
        return await _send(send, 200, _json(stats))
    if path == "/admin/reset":
        STATE.reset()
        return await _send(send, 200, _json({"ok": True}))
    if path == "/admin/faults":
        try:
            STATE.set_faults(json.loads(body or b"{}"))
        except ValueError as exc:
            return await _send(send, 400, _json({"error": str(exc)}))
        return await _send(send, 200, _json(STATE.faults))
    return await _send(send, 404, _json({"error": f"no admin route {path}"}))


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI application."""
    if scope["type"] != "http":
        return
    body = await _read(receive)
    path = scope["path"]
    if path.startswith("/admin/"):
        return await _admin(scope, body, send)
    if path not in ("/predict", "/score", "/pooling", "/generic"):
        return await _send(send, 404, _json({"error": f"no route {path}"}))
    STATE.in_flight += 1
    STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
    try:
        await _score(scope, body, send)
    finally:
        STATE.in_flight -= 1


async def _score(scope: Any, body: bytes, send: Any) -> None:
    path = scope["path"]
    faults = STATE.faults
    if faults["latency_s"]:
        await asyncio.sleep(faults["latency_s"])
    try:
        request = json.loads(body)
        pairs = _pairs(path, request)
    except (ValueError, KeyError, TypeError) as exc:
        STATE.outcomes["bad_request"] += 1
        return await _send(send, 400, _json({"error": f"cannot read request: {exc}"}))
    STATE.rows += len(pairs)
    STATE.row_hits.update(pair_key(p, r) for p, r in pairs)
    STATE.served += 1
    after = faults["outage_after"]
    if faults["outage"] or (after is not None and STATE.served > after):
        STATE.outcomes["outage"] += 1
        return await _send(send, 503, _json({"error": "service unavailable"}))
    token = faults["require_token"]
    headers = dict(scope["headers"])
    if token is not None and headers.get(b"authorization") != f"Bearer {token}".encode():
        STATE.outcomes["unauthorized"] += 1
        return await _send(send, 401, _json({"error": "missing or wrong bearer token"}))
    if STATE.roll("p_503"):
        STATE.outcomes["503"] += 1
        return await _send(send, 503, _json({"error": "overloaded"}))
    if STATE.roll("p_429"):
        STATE.outcomes["429"] += 1
        retry = str(faults["retry_after"]).encode()
        return await _send(send, 429, _json({"error": "slow down"}), [(b"retry-after", retry)])
    slow = STATE.roll("p_slow")
    if slow:
        # Counted once, here: the client has usually timed out before the answer goes out.
        STATE.outcomes["slow"] += 1
        await asyncio.sleep(faults["slow_s"])
    if STATE.roll("p_reset"):
        STATE.outcomes["reset"] += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'[[{"score": 0.', "more_body": True})
        raise ConnectionResetError("injected connection reset")
    marker = next((m for m in MARKERS for p, _ in pairs if p.startswith(m)), None)
    if marker == "@bad_request":
        STATE.outcomes["422"] += 1
        return await _send(send, 422, _json({"error": "input too long for the model"}))
    if marker == "@malformed" or STATE.roll("p_malformed"):
        STATE.outcomes["malformed"] += 1
        return await _send(send, 200, b'{"scores": [0.5, ')
    scores: list[Any] = [true_score(p, r) for p, r in pairs]
    if marker == "@wrong_count" or STATE.roll("p_wrong_count"):
        STATE.outcomes["wrong_count"] += 1
        scores = scores[:-1]
    elif marker == "@nan" or STATE.roll("p_nan"):
        STATE.outcomes["nan"] += 1
        scores[0] = float("nan")
    elif marker == "@string":
        STATE.outcomes["string"] += 1
        scores[0] = "high"
    elif not slow:
        STATE.outcomes["ok"] += 1
    return await _send(send, 200, _json(_format(path, scores, str(request.get("model", "rm")))))


class ServerHandle:
    """Client side of a running test server: its URL and admin calls."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process

    def _post(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = httpx.post(self.url + path, json=payload or {}, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Merge fault settings (see the module docstring)."""
        return self._post("/admin/faults", settings)

    def reset(self, settle_s: float = 5.0) -> None:
        """Wait for requests still in flight (e.g. slow ones a client gave up on), then reset."""
        deadline = time.monotonic() + settle_s
        while self.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        self._post("/admin/reset")

    def stats(self, rows: bool = False) -> dict[str, Any]:
        """Request counts by outcome (and per-pair hits with ``rows=True``)."""
        answer = httpx.get(self.url + "/admin/stats" + ("?rows=1" if rows else ""), timeout=10)
        answer.raise_for_status()
        return answer.json()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(startup_timeout_s: float = 20.0) -> Iterator[ServerHandle]:
    """Start the server in a subprocess on a free port; kill it on exit.

    Yields:
        A :class:`ServerHandle` once ``/admin/health`` answers.
    """
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.remote.server", "--port", str(port)],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    handle = ServerHandle(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"test server exited with code {process.returncode} on start")
            try:
                if httpx.get(handle.url + "/admin/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"test server did not answer on port {port}") from None
                time.sleep(0.05)
        yield handle
    finally:
        process.kill()
        process.wait(timeout=10)


def main() -> None:
    """Serve on 127.0.0.1 until killed."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="critical", access_log=False,
                lifespan="off")


if __name__ == "__main__":
    main()
