"""Shared fixtures: one real server per test module (see support.ServerProcess)."""

from __future__ import annotations

import pytest

from tests.support import ServerProcess

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
    import dashscope

    saved = (dashscope.api_key, dashscope.base_websocket_api_url, dashscope.base_http_api_url)
    dashscope.api_key = "test-key"
    dashscope.base_websocket_api_url = server.ws_inference
    dashscope.base_http_api_url = server.http + "/api/v1"
    yield dashscope
    dashscope.api_key, dashscope.base_websocket_api_url, dashscope.base_http_api_url = saved
