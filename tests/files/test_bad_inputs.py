"""Bad inputs to the async file API (matrix rows 53, 54 and design §6's list): each one is refused
at submit with a 4xx and DashScope's error envelope `{request_id, code, message}`, or ends as a
FAILED task (`code`/`message` in output, or per-file `subtask_status: FAILED` with code/message);
never a hang, never a 5xx, and the server stays up (checked after every case).

Two servers:
- `open_srv`: no keys, `fetch_allow_private` (it downloads from the test's 127.0.0.1 host), small
  limits (`max_async_bytes` 2 MB, `max_async_seconds` 60) and no `file_roots`.
- `keyed_srv`: two API keys, private addresses NOT allowed, `file_roots` = the shared audio folder,
  a short `result_ttl_s` (expired links), a short `fetch_timeout_s`.
"""

from __future__ import annotations

import json
import struct
import time

import httpx
import numpy as np
import pytest
from dashscope.audio.asr import Transcription
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import (
    PARAFORMER,
    QWEN,
    bad_input_outcome,
    check_envelope,
    check_qwen_doc,
    check_refused,
    duration_s,
    get_doc,
    output_dict,
)
from tests.support import AUDIO_DIR, ServerProcess, clip, error_rate, sdk_at, wav_bytes

KEY, KEY2 = "files-key-1", "files-key-2"
MAX_BYTES = 2_000_000
MAX_SECONDS = 60
TTL_S = 8
SUBMIT = "/api/v1/services/audio/asr/transcription"


@pytest.fixture(scope="module")
def open_srv():
    s = ServerProcess(config={"server": {
        "fetch_allow_private": True, "max_async_bytes": MAX_BYTES,
        "max_async_seconds": MAX_SECONDS, "fetch_timeout_s": 15}}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keyed_srv():
    s = ServerProcess(config={"api_keys": [KEY, KEY2], "server": {
        "file_roots": [str(AUDIO_DIR.resolve())], "result_ttl_s": TTL_S, "fetch_timeout_s": 10}}).start()
    yield s
    s.stop()


@pytest.fixture()
def sdk(open_srv):
    with sdk_at(open_srv):
        yield
    assert open_srv.alive(), open_srv.log()
    assert open_srv.health()["status"] == "ok"


@pytest.fixture()
def keyed_sdk(keyed_srv):
    with sdk_at(keyed_srv, api_key=KEY):
        yield
    assert keyed_srv.alive(), keyed_srv.log()
    assert keyed_srv.health()["status"] == "ok"


def _both_classes(url: str) -> list[str]:
    """The same bad file through QwenTranscription and Transcription; both must fail cleanly."""
    seen = [bad_input_outcome(QwenTranscription, QwenTranscription.async_call(model=QWEN, file_url=url)),
            bad_input_outcome(Transcription, Transcription.async_call(model=PARAFORMER, file_urls=[url]))]
    print(url, seen)
    return seen


# -- files that cannot be had or are not audio -----------------------------------------------------
@pytest.mark.timeout(120)
def test_unreachable_url(sdk):
    _both_classes("http://127.0.0.1:9/clip.wav")  # nothing listens on the discard port


@pytest.mark.timeout(120)
def test_unresolvable_host(sdk):
    _both_classes("http://no-such-host.invalid/clip.wav")


@pytest.mark.timeout(120)
def test_http_404(sdk, audio_host):
    _both_classes(audio_host.url("missing.wav"))


@pytest.mark.timeout(120)
def test_not_audio(sdk, audio_host):
    _both_classes(audio_host.put("notes.txt", b"this is a text file, not audio\n" * 200))
    _both_classes(audio_host.put("page.html", b"<html><body><h1>not audio</h1></body></html>"))


@pytest.mark.timeout(180)
def test_truncated_and_corrupt_files(sdk, audio_host):
    rng = np.random.default_rng(7)
    flac = (AUDIO_DIR / clip("en_jfk_inaugural")["path"]).read_bytes()
    ogg = (AUDIO_DIR / clip("en_fleurs_000")["path"]).read_bytes()
    pcm = rng.bytes(32000)
    bad_codec = (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE" + b"fmt "
                 + struct.pack("<IHHIIHH", 16, 0x9999, 1, 16000, 32000, 2, 16)
                 + b"data" + struct.pack("<I", len(pcm)) + pcm)
    for name, data in {"truncated.flac": flac[:300], "truncated.ogg": ogg[:1000],
                       "corrupt.flac": b"fLaC" + rng.bytes(50000),
                       "unknown-codec.wav": bad_codec}.items():
        _both_classes(audio_host.put(name, data))


# -- limits ----------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_oversized_file(sdk, audio_host):
    """Over max_async_bytes (21 s of 48 kHz stereo, ~4 MB), with and without Content-Length."""
    data = wav_bytes(bytes(21 * 48000 * 4), 48000, channels=2)
    assert len(data) > MAX_BYTES and MAX_SECONDS > 21
    url = audio_host.put("big.wav", data)
    _both_classes(url)
    _both_classes(audio_host.url("nolength/big.wav"))


@pytest.mark.timeout(180)
def test_too_long_file(sdk, audio_host):
    """Over max_async_seconds (75 s at 8 kHz: 1.2 MB, under the byte limit)."""
    rng = np.random.default_rng(3)
    pcm = (rng.standard_normal(75 * 8000) * 30).astype("<i2").tobytes()
    data = wav_bytes(pcm, 8000)
    assert len(data) < MAX_BYTES
    _both_classes(audio_host.put("long.wav", data))


@pytest.mark.timeout(120)
def test_channel_that_does_not_exist(sdk, audio_host):
    url = audio_host.clip_url("en_ldc93s1")
    bad_input_outcome(QwenTranscription,
                      QwenTranscription.async_call(model=QWEN, file_url=url, channel_id=[3]))
    bad_input_outcome(Transcription,
                      Transcription.async_call(model=PARAFORMER, file_urls=[url], channel_id=[3]))


# -- refused at submit -----------------------------------------------------------------------------
def test_row53_unknown_model(sdk, audio_host):
    url = audio_host.clip_url("en_ldc93s1")
    check_refused(QwenTranscription.async_call(model="no-such-model", file_url=url))
    check_refused(Transcription.async_call(model="no-such-model", file_urls=[url]))
    # a realtime model is not a file model
    check_refused(Transcription.async_call(model="fun-asr-realtime", file_urls=[url]))


def test_row53_ftp_url(sdk):
    check_refused(QwenTranscription.async_call(model=QWEN, file_url="ftp://x"))
    check_refused(Transcription.async_call(model=PARAFORMER, file_urls=["ftp://x/a.wav"]))


@pytest.mark.timeout(120)
def test_file_url_without_roots(sdk):
    """No file_roots configured: no file:// input at all."""
    path = (AUDIO_DIR / clip("en_ldc93s1")["path"]).resolve()
    _both_classes(f"file://{path}")
    _both_classes("file:///etc/passwd")


def test_missing_or_empty_file_url(sdk):
    check_refused(QwenTranscription.async_call(model=QWEN, file_url=None))
    check_refused(QwenTranscription.async_call(model=QWEN, file_url=""))
    check_refused(Transcription.async_call(model=PARAFORMER, file_urls=[]))


def _post(srv, body, key: str | None = "any", async_header: bool = True) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if async_header:
        headers["X-DashScope-Async"] = "enable"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(srv.http + SUBMIT, content=content, headers=headers, timeout=30)


def test_malformed_bodies(open_srv):
    for body in (b"{not json", b"", b"[1, 2]", b"\xff\xfe",
                 {"model": QWEN, "input": {}, "parameters": {}},
                 {"model": QWEN, "input": {"file_url": 123}},
                 {"model": QWEN, "input": "http://127.0.0.1/a.wav"},
                 {"input": {"file_url": "http://127.0.0.1/a.wav"}},
                 {"model": PARAFORMER, "input": {"file_urls": "http://127.0.0.1/a.wav"}},
                 {"model": PARAFORMER, "input": {"file_urls": [None]}},
                 {"model": QWEN, "input": {"file_url": "http://127.0.0.1/a.wav"},
                  "parameters": {"channel_id": "zero"}}):
        r = _post(open_srv, body)
        check_envelope(r)
        assert open_srv.alive()
    assert open_srv.health()["status"] == "ok"


# -- the keyed server: keys, private addresses, file roots, expiring links -------------------------
def test_row54_wrong_key(keyed_srv, audio_host):
    url = audio_host.clip_url("en_ldc93s1")
    with sdk_at(keyed_srv, api_key="wrong-key"):
        for resp in (QwenTranscription.async_call(model=QWEN, file_url=url),
                     Transcription.async_call(model=PARAFORMER, file_urls=[url]),
                     QwenTranscription.fetch(task="some-task"),
                     Transcription.cancel("some-task"),
                     Transcription.list(page_size=5)):
            assert resp.status_code == 401, (resp.status_code, resp.code, resp.message)
            assert resp.code == "InvalidApiKey", resp
            assert resp.message and resp.request_id, resp
    r = _post(keyed_srv, {"model": QWEN, "input": {"file_url": url}}, key=None)
    assert check_envelope(r, (401,))["code"] == "InvalidApiKey"
    r = httpx.get(keyed_srv.http + "/api/v1/tasks/some-task", timeout=10)
    assert check_envelope(r, (401,))["code"] == "InvalidApiKey"
    assert keyed_srv.health()["status"] == "ok"


@pytest.mark.timeout(180)
def test_private_addresses_refused_without_allow_private(keyed_sdk, audio_host):
    """fetch_allow_private is off: loopback, private, link-local (cloud metadata) URLs are refused
    (at submit or as a FAILED task), and the test host never sees a request."""
    before = len(audio_host.requests)
    port = audio_host.port
    for url in (audio_host.clip_url("en_ldc93s1"),
                f"http://localhost:{port}/{clip('en_ldc93s1')['path']}",
                f"http://[::1]:{port}/x.wav",
                f"http://0.0.0.0:{port}/x.wav",
                f"http://2130706433:{port}/x.wav",  # 127.0.0.1 as one integer
                "http://10.0.0.1/x.wav",
                "http://192.168.1.1/x.wav",
                "http://169.254.169.254/latest/meta-data/"):
        _both_classes(url)
    assert len(audio_host.requests) == before, audio_host.requests[before:]


@pytest.mark.timeout(240)
def test_file_roots_inside_works_without_key_outside_refused(keyed_srv, keyed_sdk):
    """file:// inside file_roots is read; the link then works without the API key and expires."""
    cid = "en_beckett"
    inside = f"file://{(AUDIO_DIR / clip(cid)['path']).resolve()}"
    r = QwenTranscription.async_call(model=QWEN, file_url=inside)
    assert r.status_code == 200, (r.status_code, r.code, r.message)

    for outside in ("file:///etc/passwd",
                    f"file://{AUDIO_DIR.resolve()}/../../../etc/passwd",
                    f"file://{AUDIO_DIR.resolve()}/%2e%2e/%2e%2e/etc/passwd",
                    f"file://{AUDIO_DIR.resolve()}-evil/x.wav",
                    "file://otherhost/etc/passwd"):
        _both_classes(outside)

    w = QwenTranscription.wait(task=r.output.task_id, wait_timeout=180)
    assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
    fresh = QwenTranscription.fetch(task=r.output.task_id)
    link = fresh.output["result"]["transcription_url"]
    t0 = time.monotonic()
    doc = get_doc(link)  # no Authorization header, on a server that requires keys
    tr = check_qwen_doc(doc, inside, duration_s(cid))[0]
    assert error_rate("en", clip(cid)["reference"], tr["text"]) <= 0.2, tr["text"]
    time.sleep(max(0.0, TTL_S + 2 - (time.monotonic() - t0)))
    expired = httpx.get(link, timeout=10)
    assert expired.status_code == 403, (expired.status_code, expired.text[:300])


@pytest.mark.timeout(120)
def test_tasks_are_private_to_their_key(keyed_srv, audio_host):
    """A task submitted with one key is UNKNOWN to another key and absent from its list."""
    inside = f"file://{(AUDIO_DIR / clip('en_ldc93s1')['path']).resolve()}"
    with sdk_at(keyed_srv, api_key=KEY):
        r = QwenTranscription.async_call(model=QWEN, file_url=inside)
        assert r.status_code == 200, (r.status_code, r.code, r.message)
        task_id = r.output.task_id
    with sdk_at(keyed_srv, api_key=KEY2):
        f = QwenTranscription.fetch(task=task_id)
        assert f.status_code == 200 and f.output.task_status == "UNKNOWN", output_dict(f)
        lst = output_dict(Transcription.list(page_size=100))
        assert task_id not in {t["task_id"] for t in lst["tasks"]}, lst
        c = QwenTranscription.cancel(task_id)
        assert c.status_code != 200 or QwenTranscription.fetch(task=task_id).output.task_status \
            == "UNKNOWN"
    with sdk_at(keyed_srv, api_key=KEY):
        w = QwenTranscription.wait(task=task_id, wait_timeout=120)
        assert w.output.task_status == "SUCCEEDED", output_dict(w)
