"""Sync recognition through `dashscope.MultiModalConversation` (matrix rows 56-64) and bad input.

One real server for the package (conftest.py: loopback fetches allowed, file_roots set, known
signing secret). Audio URLs point at `AudioHost` on 127.0.0.1. Accuracy: English WER <= 12 %,
Mandarin CER <= 15 % (tests.support.error_rate: lower-cased, punctuation removed; Chinese on
simplified characters without spaces or punctuation).
"""

from __future__ import annotations

import json
import shutil
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from dashscope import MultiModalConversation

from tests.support import AUDIO_DIR, clip, error_rate, manifest, sdk_at
from tests.sync.helpers import (
    MODEL,
    RequestLog,
    check_message,
    clip_bytes,
    data_uri,
    long_wav,
    mp3_of,
    msgs,
    text_of,
)

GENERATION = "/api/v1/services/aigc/multimodal-generation/generation"
MAX_WER = {"en": 0.12, "zh": 0.15}


@pytest.fixture()
def sdk(sync_server):
    with sdk_at(sync_server):
        yield sync_server


def call(audio: str, **kw):
    model, context = kw.pop("model", MODEL), kw.pop("context", "")
    return MultiModalConversation.call(model=model, messages=msgs(audio, context), result_format="message",
                                       **kw)


def assert_accurate(clip_id: str, text: str) -> None:
    c = clip(clip_id)
    err = error_rate(c["lang"], c["reference"], text)
    assert err <= MAX_WER[c["lang"]], (clip_id, err, text)


def raw_post(server, body, headers=None, timeout=60) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.http + GENERATION, content=data, timeout=timeout,
                      headers={"Authorization": "Bearer k", "Content-Type": "application/json",
                               **(headers or {})})


def assert_envelope(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"] == code and body["message"] and body["request_id"], body
    return body


# -- rows 56-60 ---------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_row56_url(sdk, sync_host):
    r = call(sync_host.put_clip("en_jfk_inaugural"), asr_options={"enable_itn": False})
    text = check_message(r)
    assert_accurate("en_jfk_inaugural", text)
    assert r.output.choices[0].message["annotations"][0]["language"] == "en"
    assert r.usage["seconds"] == 11
    assert r.usage["output_tokens_details"]["text_tokens"] > 10


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["wav", "mp3"])
def test_row57_data_uri(sdk, kind):
    cid = "en_librispeech_1995-1837-0001"
    uri = (data_uri(clip_bytes(cid), "audio/wav") if kind == "wav"
           else data_uri(mp3_of(cid), "audio/mpeg"))
    assert_accurate(cid, check_message(call(uri, asr_options={"enable_itn": False})))


def _upload_flow_checks(log: RequestLog, server, local: Path) -> None:
    policy, upload, generation = log.sent  # exactly these three requests, in this order
    assert policy.method == "GET" and policy.status == 200
    assert policy.url == f"{server.http}/api/v1/uploads?action=getPolicy&model={MODEL}"
    assert upload.method == "POST" and upload.status == 200
    assert upload.url == f"{server.http}/api/v1/uploads/oss"
    assert "Authorization" not in upload.headers  # the signed policy is the credential
    assert generation.method == "POST" and generation.url.endswith(GENERATION) and generation.status == 200
    assert generation.headers["X-DashScope-OssResourceResolve"] == "enable"
    audio = json.loads(generation.body)["input"]["messages"][1]["content"][0]["audio"]
    assert audio.startswith("oss://dashscope-instant/") and audio.endswith("/" + local.name)
    stored = server.workdir / "data" / "uploads" / audio[len("oss://"):]
    assert stored.read_bytes() == local.read_bytes()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("form", ["file-uri", "plain-path"])
def test_row58_59_local_file_upload_flow(sdk, tmp_path, form):
    local = tmp_path / "beckett clip.wav"
    shutil.copyfile(clip("en_beckett")["file"], local)
    ref = f"file://{local}" if form == "file-uri" else str(local)
    with RequestLog().active() as log:
        r = call(ref, asr_options={"enable_itn": False})
    assert_accurate("en_beckett", check_message(r))
    _upload_flow_checks(log, sdk, local)


@pytest.mark.timeout(60)
def test_row60_language_itn_context(sdk):
    cid = "zh_funasr_asr_example"
    r = call(data_uri(clip_bytes(cid), "audio/wav"), context="达摩院 语音识别模型",
             asr_options={"language": "zh", "enable_itn": True})
    text = check_message(r)
    assert_accurate(cid, text)
    assert r.output.choices[0].message["annotations"][0]["language"] == "zh"
    assert r.usage["input_tokens_details"]["text_tokens"] > 0  # the context was counted


# -- rows 61-63: streaming -----------------------------------------------------------------------
def _stream(audio: str, **kw) -> list:
    chunks = list(call(audio, stream=True, **kw))
    assert chunks and all(c.status_code == 200 for c in chunks), [(c.status_code, c.message) for c in chunks]
    assert chunks[-1].output.choices[0].finish_reason == "stop"
    assert all(c.output.choices[0].finish_reason == "null" for c in chunks[:-1])
    assert all(c.output.choices[0].message.role == "assistant" for c in chunks)
    return chunks


@pytest.mark.timeout(90)
def test_row61_stream_cumulative(sdk, sync_host):
    cid = "en_osr_us_000_0034_8k"  # 35 s, ten sentences
    chunks = _stream(sync_host.put_clip(cid))
    texts = [text_of(c) for c in chunks]
    assert len(texts) >= 5, texts  # one event per sentence, then the final one
    for before, after in zip(texts, texts[1:], strict=False):
        assert after.startswith(before), (before, after)
    assert texts[-1] == texts[-2]  # the final event repeats the full text
    assert_accurate(cid, texts[-1])
    assert all(isinstance(c.usage["seconds"], int) for c in chunks)


@pytest.mark.timeout(90)
def test_row62_stream_incremental(sdk):
    uri = data_uri(clip_bytes("en_beckett"), "audio/wav")
    full = check_message(call(uri))
    chunks = _stream(uri, incremental_output=True)
    assert chunks[-1].output.choices[0].message.content == []
    deltas = [text_of(c) for c in chunks[:-1]]
    assert len(deltas) >= 2, deltas  # "Ever tried. Ever failed. ..." is several sentences
    assert "".join(deltas) == full


@pytest.mark.timeout(90)
def test_row63_stream_incremental_false(sdk):
    # The SDK sends incremental_output=true and merges the deltas itself.
    uri = data_uri(clip_bytes("en_beckett"), "audio/wav")
    full = check_message(call(uri))
    with RequestLog().active() as log:
        chunks = _stream(uri, incremental_output=False)
    assert json.loads(log.sent[0].body)["parameters"]["incremental_output"] is True
    texts = [text_of(c) for c in chunks]
    for before, after in zip(texts, texts[1:], strict=False):
        assert after.startswith(before)
    assert texts[-1] == full


@pytest.mark.timeout(60)
def test_sse_framing_raw(sync_server):
    body = {"model": MODEL, "parameters": {"incremental_output": True},
            "input": {"messages": msgs(data_uri(clip_bytes("en_beckett"), "audio/wav"))}}
    resp = raw_post(sync_server, body, {"X-DashScope-SSE": "enable", "Accept": "text/event-stream"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = [e for e in resp.text.split("\n\n") if e]
    for n, event in enumerate(events, 1):
        lines = event.split("\n")
        assert lines[:3] == [f"id:{n}", "event:result", ":HTTP_STATUS/200"], lines
        assert len(lines) == 4 and lines[3].startswith("data:")
        payload = json.loads(lines[3][len("data:"):])
        assert payload["request_id"] and payload["usage"]["seconds"] == 10
        choice = payload["output"]["choices"][0]
        assert choice["finish_reason"] == ("stop" if n == len(events) else "null")
    assert json.loads(events[-1].split("data:", 1)[1])["output"]["choices"][0]["message"]["content"] == []


# -- row 64: limits ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_urls(sync_host):
    return {
        # 6 min at 8 kHz is 5.8 MB: under the size limit, over the 5 min limit
        "too-long": (sync_host.put("six-minutes-8k.wav", long_wav(360, 8000)),
                     "InvalidParameter.AudioTooLong"),
        # 6 min at 16 kHz is 11.5 MB: over the 10 MB limit
        "too-large": (sync_host.put("six-minutes-16k.wav", long_wav(360, 16000)),
                      "InvalidParameter.FileTooLarge"),
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize("which", ["too-long", "too-large"])
def test_row64_limits(sdk, long_urls, which):
    url, code = long_urls[which]
    r = call(url)
    assert r.status_code == 400 and r.code == code and r.message and r.output is None, (r.code, r.message)
    items = list(call(url, stream=True))
    assert len(items) == 1, items
    assert (items[0].status_code, items[0].code, items[0].message) == (400, code, r.message)
    assert items[0].output is None


@pytest.mark.timeout(60)
def test_just_under_the_limits_is_accepted(sdk, sync_host):
    # 4 s of real speech padded with silence to 4 min 50 s: accepted (VAD skips the silence)
    from tests.support import clip_pcm, wav_bytes
    pcm = clip_pcm("zh_paddlespeech_zh")
    url = sync_host.put("long-silence.wav", wav_bytes(pcm + bytes(16000 * 2 * 285), 16000))
    r = call(url, asr_options={"language": "zh"})
    assert_accurate("zh_paddlespeech_zh", check_message(r))
    assert r.usage["seconds"] == 290


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_corrupt_audio(sdk):
    junk = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40
    for uri in (data_uri(junk, "audio/wav"), data_uri(b"this is not audio at all" * 100, "audio/mpeg")):
        r = call(uri)
        assert r.status_code == 400 and r.code == "InvalidParameter.Audio" and r.message, (r.code, r.message)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("audio", "code"), [
    ("ftp://example.com/a.wav", "InvalidParameter.FileUrl"),
    ("s3://bucket/a.wav", "InvalidParameter.FileUrl"),
    ("oss://dashscope-instant/none/2025-01-01/x/a.wav", "InvalidParameter.FileNotFound"),
    ("oss://../../secret.key", "InvalidParameter.FileUrl"),
    ("http://127.0.0.1:1/a.wav", "InvalidParameter.DownloadFailed"),
])
def test_bad_references(sdk, audio, code):
    r = call(audio)
    assert r.status_code == 400 and r.code == code and r.message and r.output is None, (r.code, r.message)


@pytest.mark.timeout(60)
def test_missing_url_and_bad_language(sdk, sync_host):
    url = sync_host.put_clip("en_beckett")
    r = call(url.replace("en_beckett.wav", "missing.wav"))
    assert (r.status_code, r.code) == (400, "InvalidParameter.FileNotFound"), r.message
    r = call(url, asr_options={"language": "xx"})
    assert (r.status_code, r.code) == (400, "InvalidParameter"), r.message
    assert "supported" in r.message


@pytest.mark.timeout(60)
def test_unknown_model(sdk, sync_host):
    url = sync_host.put_clip("en_beckett")
    for model in ("no-such-model", "fun-asr-realtime"):  # unknown, and not a sync model
        r = call(url, model=model)
        assert r.status_code == 400 and r.code == "ModelNotFound" and r.message and r.output is None
        items = list(call(url, model=model, stream=True))
        assert len(items) == 1 and items[0].status_code == 400 and items[0].code == "ModelNotFound"


@pytest.mark.timeout(60)
def test_server_side_file_uris(sync_server, file_root):
    # A raw client (not the SDK, which would upload the file) may name files in file_roots.
    inside = f"file://{AUDIO_DIR}/en_beckett.wav"
    resp = raw_post(sync_server, {"model": MODEL, "input": {"messages": msgs(inside)}})
    assert resp.status_code == 200, resp.text
    assert_accurate("en_beckett", resp.json()["output"]["choices"][0]["message"]["content"][0]["text"])
    (file_root / "link.wav").symlink_to("/etc/passwd")
    for outside in ("file:///etc/passwd", f"file://{file_root}/../../etc/hostname", f"file://{file_root}/link.wav",
                    f"file://{sync_server.workdir}/data/secret.key"):
        resp = raw_post(sync_server, {"model": MODEL, "input": {"messages": msgs(outside)}})
        body = assert_envelope(resp, 400, "InvalidParameter.FileUrl")
        assert "file_roots" in body["message"]


@pytest.mark.timeout(30)
def test_malformed_requests(sync_server):
    def bad(body) -> dict:
        return assert_envelope(raw_post(sync_server, body), 400, "InvalidParameter")

    bad(b'{"model": "qwen3-asr-flash", "input": ')
    bad(b"[1, 2]")
    bad({"model": MODEL, "input": {"messages": []}})
    bad({"model": MODEL, "input": "x"})
    no_audio = [{"role": "user", "content": [{"text": "hello"}]}]
    assert "audio" in bad({"model": MODEL, "input": {"messages": no_audio}})["message"]
    bad({"input": {"messages": msgs("x")}})
    two = [{"role": "user", "content": [{"audio": "a"}, {"audio": "b"}]}]
    bad({"model": MODEL, "input": {"messages": two}})
    bad({"model": MODEL, "parameters": {"asr_options": {"enable_itn": "yes"}},
         "input": {"messages": msgs("x")}})


# -- accuracy over the shared clips --------------------------------------------------------------
@pytest.mark.timeout(180)
def test_accuracy_en_zh_concurrent(sdk, sync_host):
    """Every English and Mandarin clip, three requests at a time (results must not mix)."""
    clips = [c for c in manifest() if c["lang"] in MAX_WER]

    def one(c: dict) -> tuple[dict, str]:
        return c, check_message(call(sync_host.put_clip(c["id"])))

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(one, clips))
    rates: dict[str, list[float]] = {lang: [] for lang in MAX_WER}
    rows = []
    for c, text in results:
        err = error_rate(c["lang"], c["reference"], text)
        rates[c["lang"]].append(err)
        rows.append(f"{c['id']:32s} {err:6.3f}  {text}")
    print("\n" + "\n".join(rows))
    for lang, errs in rates.items():
        assert errs and statistics.mean(errs) <= MAX_WER[lang], (lang, errs, rows)
