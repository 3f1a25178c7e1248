"""Fixtures: one real fault-injecting scoring server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rlhf_core.remote import reset_shared_breakers
from tests.remote.server import ServerHandle, running_server


@pytest.fixture(scope="session")
def _server_process() -> Iterator[ServerHandle]:
    with running_server() as handle:
        yield handle


@pytest.fixture()
def server(_server_process: ServerHandle) -> ServerHandle:
    """The running test server with counters and faults reset (and every breaker closed)."""
    _server_process.reset()
    reset_shared_breakers()
    return _server_process
