"""Audio caps on every path (issue 9, items 3, 6 and 7), against one real server.

- Item 3: `/v1/audio/transcriptions` and `/translations` enforce `max_sync_seconds` (the sync
  API's cap) on the decoded audio: a small FLAC of long silence is refused with OpenAI's 400.
- Item 6: the Qwen realtime socket enforces `max_task_audio_s` with the inference socket's rule
  and message (error event, then close).
- Item 7: a WAV whose header chunk claims more bytes than can follow (a `LIST` chunk of 2 GB
  before `data`, or one that runs past the end of the stream) is an `InvalidParameter` error on
  every path: inference socket (task-failed), realtime socket (error event), sync API and OpenAI
  endpoint (400), file task (FAILED subtask) - never a silent success with no text.

The caps are set small in the server's config so the tests stay short; nothing here is timed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import tempfile
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import websocket
from dashscope.audio.asr import Recognition, Transcription

from tests.audio.media import encode
from tests.conftest import FAST_ENV
from tests.protocols.inference_helpers import check_failed_call, new_task_id, raw_connect, run_task
from tests.realtime.helpers import MODEL as RT_MODEL
from tests.realtime.helpers import b64, raw_drain_until_close, raw_recv, raw_send, rt_url
from tests.support import ServerProcess, clip_pcm, sdk_at

TASK_CAP_S = 5
SYNC_CAP_S = 20
CLIP = "en_ldc93s1"  # 2.9 s: inside both caps
CAP_MESSAGE = f"task exceeds the maximum of {TASK_CAP_S} s of audio"
SYNC_URL = "/api/v1/services/aigc/multimodal-generation/generation"


@pytest.fixture(scope="module")
def file_root():
    with tempfile.TemporaryDirectory(prefix="voxscope-caps-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def server(file_root):
    srv = ServerProcess(env=FAST_ENV, config={"server": {
        "max_task_audio_s": TASK_CAP_S, "max_sync_seconds": SYNC_CAP_S,
        "file_roots": [str(file_root)]}}).start()
    yield srv
    srv.stop()


# -- audio -----------------------------------------------------------------------------------------
def silence_flac(seconds: float, rate: int = 16000) -> bytes:
    """A real FLAC file of digital silence: minutes of audio in a few kilobytes."""
    return encode(np.zeros(int(seconds * rate), np.float32), rate, "flac", "flac")


def wav_with_chunk(pcm: bytes, claimed: int, rate: int = 16000) -> bytes:
    """A mono s16 WAV with a `LIST` chunk that claims `claimed` bytes between fmt and data."""
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    info = b"INFOISFT" + struct.pack("<I", 6) + b"caps!\0"
    body = (b"WAVE" + fmt + b"LIST" + struct.pack("<I", claimed) + info
            + b"data" + struct.pack("<I", len(pcm)) + pcm)
    return b"RIFF" + struct.pack("<I", min(len(body), 0xFFFFFFFF)) + body


# 2 GB claimed (the file), and 500 kB: under any sane bound but past the stream's end.
BROKEN_WAVS = [pytest.param(2_000_000_000, id="list-2GB"), pytest.param(500_000, id="list-past-end")]


# -- item 3: the OpenAI endpoints ------------------------------------------------------------------
@pytest.fixture()
def oai(server):
    return openai.OpenAI(api_key="k", base_url=server.http + "/v1", max_retries=0, timeout=120)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("endpoint", ["transcriptions", "translations"])
def test_openai_refuses_audio_past_sync_cap(oai, endpoint):
    flac = silence_flac(10 * 60)  # 10 minutes, 30x the configured cap
    assert len(flac) < 1 << 20
    api = getattr(oai.audio, endpoint)
    with pytest.raises(openai.BadRequestError) as info:
        api.create(model="whisper-1", file=("silence.flac", flac))
    exc = info.value
    assert exc.status_code == 400
    err = exc.body
    assert err["type"] == "invalid_request_error" and err["param"] == "file", err
    assert err["code"] == "audio_too_long", err
    assert f"{SYNC_CAP_S} s" in err["message"], err
    # within the cap the same endpoint still answers (and the server still serves)
    ok = api.create(model="whisper-1", file=("short.flac", silence_flac(SYNC_CAP_S - 5)),
                    response_format="json")
    assert isinstance(ok.text, str)


# -- item 6: max_task_audio_s on the realtime socket, same rule as the inference socket ----------
def _send_all(send, frames) -> None:
    """Send frames until the server ends the session (it may close before the last one)."""
    for frame in frames:
        try:
            send(frame)
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return


@pytest.mark.timeout(120)
def test_realtime_enforces_task_audio_cap(server):
    pcm = clip_pcm("en_jfk_inaugural")[: 8 * 16000 * 2]  # 8 s of speech against a 5 s cap
    ws = websocket.create_connection(f"{rt_url(server)}?model={RT_MODEL}",
                                     header=["Authorization: Bearer k"], timeout=30)
    try:
        assert raw_recv(ws)["type"] == "session.created"
        step = 16000  # 0.5 s per append
        _send_all(lambda p: raw_send(ws, {"type": "input_audio_buffer.append", "audio": b64(p)}),
                  [pcm[i: i + step] for i in range(0, len(pcm), step)])
        events, code = raw_drain_until_close(ws, timeout=90)
    finally:
        with contextlib.suppress(Exception):
            ws.close()
    errors = [e for e in events if e["type"] == "error"]
    assert errors, [e["type"] for e in events]
    err = errors[0]["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == "InvalidParameter", err
    assert err["message"] == CAP_MESSAGE, err
    assert events[-1]["type"] == "error", [e["type"] for e in events]  # the session ended there
    assert "session.finished" not in [e["type"] for e in events]
    assert code == 1000, code


@pytest.mark.timeout(120)
def test_inference_enforces_the_same_rule(server):
    pcm = clip_pcm("en_jfk_inaugural")[: 8 * 16000 * 2]
    ws = raw_connect(server.ws_inference, key="k", timeout=60)
    task_id = new_task_id()
    try:
        ws.send(run_task(task_id))
        assert json.loads(ws.recv())["header"]["event"] == "task-started"
        _send_all(lambda p: ws.send_binary(p), [pcm[i: i + 16000] for i in range(0, len(pcm), 16000)])
        while True:
            ev = json.loads(ws.recv())
            if ev["header"]["event"] in ("task-finished", "task-failed"):
                break
    finally:
        with contextlib.suppress(Exception):
            ws.close()
    assert ev["header"]["event"] == "task-failed", ev
    assert ev["header"]["error_code"] == "InvalidParameter", ev
    assert ev["header"]["error_message"] == CAP_MESSAGE, ev


# -- item 7: a header chunk larger than what can follow ------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("claimed", BROKEN_WAVS)
def test_broken_wav_inference_sdk(server, tmp_path, claimed):
    path = tmp_path / "broken.wav"
    path.write_bytes(wav_with_chunk(clip_pcm(CLIP), claimed))
    with sdk_at(server, "k"):
        r = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000, callback=None)
        res = r.call(str(path))
    check_failed_call(res, r, "LIST", "data chunk")
    assert res.code == "InvalidParameter", (res.code, res.message)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("claimed", BROKEN_WAVS)
def test_broken_wav_realtime(server, claimed):
    wav = wav_with_chunk(clip_pcm(CLIP), claimed)
    ws = websocket.create_connection(f"{rt_url(server)}?model={RT_MODEL}",
                                     header=["Authorization: Bearer k"], timeout=30)
    try:
        assert raw_recv(ws)["type"] == "session.created"
        raw_send(ws, {"type": "input_audio_buffer.append", "audio": b64(wav)})
        raw_send(ws, {"type": "session.finish"})
        events, _ = raw_drain_until_close(ws, timeout=90)
    finally:
        with contextlib.suppress(Exception):
            ws.close()
    errors = [e["error"] for e in events if e["type"] == "error"]
    assert errors, [e["type"] for e in events]
    assert errors[0]["code"] == "invalid_audio", errors
    assert "LIST" in errors[0]["message"] or "data chunk" in errors[0]["message"], errors


@pytest.mark.timeout(120)
def test_broken_wav_sync_openai_and_file_task(server, file_root):
    wav = wav_with_chunk(clip_pcm(CLIP), 2_000_000_000)
    # sync API: 400 InvalidParameter.*
    uri = "data:audio/wav;base64," + base64.b64encode(wav).decode()
    r = httpx.post(server.http + SYNC_URL, headers={"Authorization": "Bearer k"}, timeout=60,
                   json={"model": "qwen3-asr-flash",
                         "input": {"messages": [{"role": "user", "content": [{"audio": uri}]}]}})
    assert r.status_code == 400, r.text
    assert r.json()["code"].startswith("InvalidParameter"), r.text
    # OpenAI endpoint: 400 in OpenAI's shape
    oai = openai.OpenAI(api_key="k", base_url=server.http + "/v1", max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError) as info:
        oai.audio.transcriptions.create(model="whisper-1", file=("broken.wav", wav))
    assert info.value.body["param"] == "file", info.value.body
    # file task: the subtask fails with an InvalidParameter code
    (file_root / "broken.wav").write_bytes(wav)
    url = f"file://{file_root / 'broken.wav'}"
    with sdk_at(server, "k"):
        t = Transcription.async_call(model="paraformer-v2", file_urls=[url])
        assert t.status_code == 200, t
        out = Transcription.wait(task=t.output.task_id, wait_timeout=90).output
    assert out["task_status"] == "FAILED", out
    result = out["results"][0]
    assert result["subtask_status"] == "FAILED", result
    assert result["code"].startswith("InvalidParameter") and result["message"], result
