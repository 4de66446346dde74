"""Matrix row 38: a server with API keys configured refuses a wrong key at the handshake.

The SDK never sees the refusal (its `connect()` only waits 5 s for an open socket and raises
`TimeoutError`, RT §7); a raw client sees HTTP 401 and DashScope's JSON error body.
"""

from __future__ import annotations

import json

import pytest
import websocket

from tests.conftest import FAST_ENV
from tests.realtime.helpers import (
    FINISHED,
    check_created,
    close_quietly,
    connect,
    manual_transcription,
    raw_connect,
    raw_recv,
)
from tests.support import ServerProcess

RIGHT = "k1"


@pytest.fixture(scope="module")
def keyed_server():
    srv = ServerProcess(env=FAST_ENV, config={"api_keys": [RIGHT]}).start()
    yield srv
    srv.stop()


@pytest.mark.timeout(30)
def test_row38_sdk_wrong_key_connect_times_out(keyed_server):
    with pytest.raises(TimeoutError):
        connect(keyed_server, api_key="wrong")
    assert keyed_server.health()["active_tasks"] == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("key", ["wrong", None], ids=["wrong_key", "no_key"])
def test_row38_raw_client_gets_401_json(keyed_server, key):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        raw_connect(keyed_server, api_key=key, extra_headers=["OpenAI-Beta: realtime=v1"])
    exc = info.value
    assert exc.status_code == 401, exc
    body = json.loads(exc.resp_body)
    assert body["code"] == "InvalidApiKey", body
    assert isinstance(body.get("message"), str) and body["message"], body


@pytest.mark.timeout(60)
def test_row38_right_key_works(keyed_server):
    conv, rec = connect(keyed_server, api_key=RIGHT)
    try:
        manual_transcription(conv, rec)
        conv.end_session()
    finally:
        close_quietly(conv)
    assert conv.get_session_id() == check_created(rec.events[0])
    assert rec.types()[-1] == FINISHED and not rec.errors(), rec.types()
    # The seed's raw client with the right key and its OpenAI-Beta header.
    ws = raw_connect(keyed_server, api_key=RIGHT, extra_headers=["OpenAI-Beta: realtime=v1"])
    try:
        check_created(raw_recv(ws, 10))
    finally:
        ws.close()
