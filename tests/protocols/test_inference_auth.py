"""Inference WebSocket on a server with API keys: matrix row 19 (wrong key) and the right key.

A dedicated server with `api_keys: [k1]`. The SDK reports a refused handshake (HTTP 401) as
status 401 with its fixed message 'Unauthorized, your api-key is invalid!' (WS §1.3).
"""

from __future__ import annotations

import json
import time

import pytest
import websocket
from dashscope.audio.asr import Recognition

from tests.conftest import FAST_ENV
from tests.protocols.inference_helpers import Recorder, good_call
from tests.support import ServerProcess, clip, sdk_at

KEY = "k1"
SDK_MESSAGE = "Unauthorized, your api-key is invalid!"


@pytest.fixture(scope="module")
def keyed_server():
    srv = ServerProcess(env=FAST_ENV, config={"api_keys": [KEY]}).start()
    yield srv
    srv.stop()


@pytest.mark.timeout(30)
def test_row19_wrong_key_call_then_right_key(keyed_server):
    with sdk_at(keyed_server, api_key="wrong"):
        r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None)
        res = r.call(str(clip("en_ldc93s1")["file"]))
        assert res.status_code == 401, (res.status_code, res.code, res.message)
        assert res.message == SDK_MESSAGE, res.message
        assert not res.get_sentence()
    with sdk_at(keyed_server, api_key=KEY):
        good_call()
    assert keyed_server.alive()


@pytest.mark.timeout(30)
def test_row19_wrong_key_callback(keyed_server):
    with sdk_at(keyed_server, api_key="wrong"):
        cb = Recorder()
        r = Recognition(model="fun-asr-realtime", format="pcm", sample_rate=16000, callback=cb)
        r.start()
        assert cb.done.wait(10), cb.summary()
        deadline = time.monotonic() + 5
        while "close" not in cb.kinds() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cb.kinds() == ["open", "error", "close"], cb.summary()
        err = cb.errors()[0]
        assert err.status_code == 401 and err.message == SDK_MESSAGE, cb.summary()
    with sdk_at(keyed_server, api_key=KEY):
        good_call()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("header", [["Authorization: Bearer wrong"], []], ids=["wrong-key", "no-key"])
def test_raw_handshake_refused_with_json_body(keyed_server, header):
    # Raw clients get the common JSON error body with the 401 (WS §1.3; the SDK ignores the body).
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(keyed_server.ws_inference, header=header, timeout=10)
    assert info.value.status_code == 401
    body = json.loads(info.value.resp_body)
    assert body["code"] == "InvalidApiKey" and body["message"] and "request_id" in body, body
    with sdk_at(keyed_server, api_key=KEY):
        good_call()
