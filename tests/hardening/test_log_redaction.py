"""Temporary tokens passed in a URL (`?token=`, the browsers' WebSocket route) never reach the
server log: uvicorn's access and WebSocket lines print the path with its query string."""

from __future__ import annotations

import httpx
import pytest
import websocket

from tests.support import ServerProcess

KEY = "sk-log-redaction-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(config={"server": {"api_keys": [KEY]}}, args=["--log-level", "info"]).start()
    yield srv
    srv.stop()


def test_token_in_the_url_is_not_logged(server):
    r = httpx.post(server.http + "/api/v1/tokens?expire_in_seconds=60",
                   headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert r.status_code == 200, r.text
    token = r.json().get("token") or r.json()["output"]["token"]
    ws = websocket.create_connection(f"{server.ws_inference}?token={token}", timeout=10)
    ws.close()
    httpx.get(f"{server.http}/api/v1/tasks?token={token}&page_size=1", timeout=10)
    httpx.get(f"{server.http}/health?api_key={KEY}", timeout=10)
    log = server.log()
    assert "WebSocket /api-ws/v1/inference?token=***" in log, log[-2000:]
    assert "token=***" in log and "api_key=***" in log, log[-2000:]
    assert token not in log and KEY not in log
