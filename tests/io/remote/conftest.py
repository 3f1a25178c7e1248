"""Fixtures: one real fault-injecting scoring server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.io.remote.server import ServerHandle, running_server


@pytest.fixture(scope="session")
def _server_process() -> Iterator[ServerHandle]:
    with running_server() as handle:
        yield handle


@pytest.fixture()
def server(_server_process: ServerHandle) -> ServerHandle:
    """The running test server with counters and faults reset."""
    _server_process.reset()
    return _server_process
