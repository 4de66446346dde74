"""Shared fixtures: one real server per test module (see support.ServerProcess)."""

from __future__ import annotations

import pytest

from tests.files.helpers import AudioHost
from tests.support import ServerProcess, sdk_at

# Short timeouts keep most tests fast; one test module runs the real defaults (test_defaults.py).
FAST_ENV = {
    "VOXSCOPE_IDLE_TIMEOUT_S": "8",
    "VOXSCOPE_SOCKET_IDLE_TIMEOUT_S": "8",
    "VOXSCOPE_HEARTBEAT_INTERVAL_S": "2",
}


@pytest.fixture(scope="module")
def server():
    """A server with open access (no keys), fast timeouts, default profiles."""
    srv = ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 6}}).start()
    yield srv
    srv.stop()


@pytest.fixture()
def dashscope_at(server):
    """The dashscope SDK pointed at the module's server; restores global state afterwards."""
    with sdk_at(server) as dashscope:
        yield dashscope


@pytest.fixture(scope="session")
def audio_host():
    """One HTTP host serving test audio (file_url inputs) for the whole session."""
    host = AudioHost().start()
    yield host
    host.stop()
