"""A server with API keys and the default fetch policy: matrix row 65 and private addresses.

Wrong keys get 401 everywhere (DashScope envelope `InvalidApiKey` on /api/v1, OpenAI's shape on
/v1); the policy-signed upload POST needs no key; URLs that resolve to loopback/private addresses
are refused (`InvalidParameter.PrivateAddress`) because `fetch_allow_private` is off by default,
and the audio host never sees a request.
"""

from __future__ import annotations

import shutil

import httpx
import openai
import pytest
from dashscope import MultiModalConversation

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, clip, sdk_at
from tests.sync.helpers import (
    MODEL,
    check_message,
    clip_bytes,
    data_uri,
    msgs,
)

KEY = "sync-key"
PRIVATE = "InvalidParameter.PrivateAddress"


@pytest.fixture(scope="module")
def keyed_server():
    srv = ServerProcess(env=FAST_ENV, config={"api_keys": [KEY], "server": {"workers": 0}}).start()
    yield srv
    srv.stop()


def call(audio: str, **kw):
    return MultiModalConversation.call(model=MODEL, messages=msgs(audio), result_format="message", **kw)


@pytest.mark.timeout(60)
def test_row65_wrong_key(keyed_server):
    uri = data_uri(clip_bytes("en_beckett"), "audio/wav")
    with sdk_at(keyed_server, api_key="wrong"):
        r = call(uri)
        assert (r.status_code, r.code) == (401, "InvalidApiKey") and r.output is None and r.message
        items = list(call(uri, stream=True))
        assert len(items) == 1 and (items[0].status_code, items[0].code) == (401, "InvalidApiKey")
    resp = httpx.get(keyed_server.http + "/api/v1/uploads", params={"action": "getPolicy", "model": MODEL},
                     timeout=10)
    assert resp.status_code == 401 and resp.json()["code"] == "InvalidApiKey"
    wrong = openai.OpenAI(api_key="wrong", base_url=keyed_server.http + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.audio.transcriptions.create(model="whisper-1", file=("a.wav", clip_bytes("en_beckett")))
    assert info.value.body["code"] == "invalid_api_key"


@pytest.mark.timeout(60)
def test_right_key_with_upload_flow(keyed_server, tmp_path):
    local = tmp_path / "clip.wav"
    shutil.copyfile(clip("en_beckett")["file"], local)
    with sdk_at(keyed_server, api_key=KEY):
        text = check_message(call(f"file://{local}"))
    assert "fail better" in text.lower()
    client = openai.OpenAI(api_key=KEY, base_url=keyed_server.http + "/v1", max_retries=0)
    r = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", clip_bytes("en_beckett")))
    assert "fail better" in r.text.lower()


@pytest.mark.timeout(60)
def test_private_addresses_refused(keyed_server, sync_host):
    url = sync_host.put_clip("en_beckett")
    port = url.split(":")[2].split("/")[0]
    with sdk_at(keyed_server, api_key=KEY):
        for ref in (url, f"http://localhost:{port}/en_beckett.wav", f"http://[::1]:{port}/en_beckett.wav",
                    "http://169.254.169.254/latest/meta-data/", f"http://0.0.0.0:{port}/en_beckett.wav",
                    f"{keyed_server.http}/health"):
            r = call(ref)
            assert (r.status_code, r.code) == (400, PRIVATE), (ref, r.code, r.message)
    # file:// input is off without file_roots (a raw client; the SDK would upload the file)
    resp = httpx.post(keyed_server.http + "/api/v1/services/aigc/multimodal-generation/generation",
                      json={"model": MODEL, "input": {"messages": msgs(f"file://{clip('en_beckett')['file']}")}},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert resp.status_code == 400 and resp.json()["code"] == "InvalidParameter.FileUrl", resp.text
