"""Limits of the sync API: recognition capacity shared with realtime tasks, upload expiry, the
10 000-token context."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, clip_pcm, wav_bytes
from tests.sync.helpers import data_uri, msgs


@pytest.fixture(scope="module")
def one_slot():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 1, "workers": 0}}).start()
    yield srv
    srv.stop()


def _run_task(task_id: str) -> dict:
    return {"header": {"action": "run-task", "task_id": task_id, "streaming": "duplex"},
            "payload": {"task_group": "audio", "task": "asr", "function": "recognition",
                        "model": "fun-asr-realtime",
                        "parameters": {"format": "pcm", "sample_rate": 16000}, "input": {}}}


def test_sync_call_refused_while_capacity_is_taken(one_slot):
    import json

    import websocket

    ws = websocket.create_connection(one_slot.ws_inference, header=["Authorization: Bearer k"])
    try:
        ws.send(json.dumps(_run_task("a" * 32)))
        assert json.loads(ws.recv())["header"]["event"] == "task-started"
        body = {"model": "qwen3-asr-flash", "parameters": {},
                "input": {"messages": msgs(data_uri(wav_bytes(clip_pcm("en_beckett")),
                                                    "audio/wav"))}}
        r = httpx.post(one_slot.http + "/api/v1/services/aigc/multimodal-generation/generation",
                       json=body, timeout=60)
        assert r.status_code == 429
        assert r.json()["code"].startswith("Throttling")
        files = {"file": ("a.wav", wav_bytes(clip_pcm("en_beckett")), "audio/wav")}
        r = httpx.post(one_slot.http + "/v1/audio/transcriptions", data={"model": "whisper-1"},
                       files=files, timeout=60)
        assert r.status_code == 429
        assert r.json()["error"]["type"] == "rate_limit_error"
    finally:
        ws.close()
    # The slot comes back when the realtime task ends; the sync call then succeeds.
    deadline = time.monotonic() + 20
    while one_slot.health()["active_tasks"] and time.monotonic() < deadline:
        time.sleep(0.2)
    r = httpx.post(one_slot.http + "/api/v1/services/aigc/multimodal-generation/generation",
                   json=body, timeout=120)
    assert r.status_code == 200, r.text
    assert one_slot.health()["active_tasks"] == 0


def test_expired_uploads_are_removed(tmp_path):
    from voxscope.config import load_settings
    from voxscope.inputs.sources import expire_uploads, upload_path

    settings = load_settings(data_dir=tmp_path, upload_ttl_s=3600)
    old, new = upload_path(settings, "d/x/old.wav"), upload_path(settings, "d/y/new.wav")
    for p in (old, new):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"RIFF")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert expire_uploads(settings) == 1
    assert not old.exists() and not old.parent.exists()
    assert new.exists()


def test_context_over_10000_tokens_is_refused(sync_server):
    context = "voxscope hotword " * 6000  # ~12 000 tokens
    audio = data_uri(wav_bytes(clip_pcm("en_beckett")), "audio/wav")
    r = httpx.post(sync_server.http + "/api/v1/services/aigc/multimodal-generation/generation",
                   json={"model": "qwen3-asr-flash", "parameters": {},
                         "input": {"messages": msgs(audio, context)}}, timeout=60)
    assert r.status_code == 400, r.text
    assert "10000" in r.json()["message"]
    r = httpx.post(sync_server.http + "/api/v1/services/audio/asr/transcription",
                   headers={"X-DashScope-Async": "enable"},
                   json={"model": "qwen3-asr-flash-filetrans",
                         "parameters": {"corpus": {"text": context}},
                         "input": {"file_url": "https://example.com/a.wav"}}, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "InvalidParameter"
