"""Uploads belong to their key, shared documents hide upload keys (issue 9, item 12), and the
Paraformer document's `properties.audio_format` names the codec (item 20, its last part).

One keyed server with two API keys. Key A uploads through the official SDK's upload flow
(`OssUtils.upload`: policy, then the policy-signed POST); key B, which learns the `oss://` key,
must be refused on the sync API and on file-task submission, while A keeps using it. A's file
task results, served by unauthenticated signed links, must not carry the internal upload key.
"""

from __future__ import annotations

import json

import httpx
import pytest
from dashscope import MultiModalConversation
from dashscope.audio.asr import Transcription
from dashscope.audio.qwen_asr import QwenTranscription
from dashscope.utils.oss_utils import OssUtils

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, sdk_at
from tests.sync.helpers import MODEL as SYNC_MODEL
from tests.sync.helpers import clip_bytes, mp3_of, msgs

KEY_A = "owner-a-0123456789abcdef"
KEY_B = "owner-b-0123456789abcdef"
CLIP = "en_ldc93s1"
PARAFORMER = "paraformer-v2"


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"api_keys": [KEY_A, KEY_B]}}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def uploads(server, tmp_path_factory):
    """A WAV and an MP3 of the same clip, uploaded by key A: {suffix: oss:// URL}."""
    folder = tmp_path_factory.mktemp("uploads")
    (folder / "clip.wav").write_bytes(clip_bytes(CLIP))
    (folder / "clip.mp3").write_bytes(mp3_of(CLIP))
    out = {}
    with sdk_at(server, KEY_A):
        for name in ("clip.wav", "clip.mp3"):
            url, _ = OssUtils.upload(model=PARAFORMER, file_path=str(folder / name), api_key=KEY_A)
            assert url.startswith("oss://") and url.endswith("/" + name), url
            out[name.rsplit(".", 1)[1]] = url
    return out


def _sync(server, key: str, url: str):
    with sdk_at(server, key):
        return MultiModalConversation.call(api_key=key, model=SYNC_MODEL, messages=msgs(url))


@pytest.mark.timeout(120)
def test_upload_is_bound_to_its_key(server, uploads):
    url = uploads["wav"]
    # B knows the key but did not upload it: refused, clearly, on both APIs that take oss://
    r = _sync(server, KEY_B, url)
    assert r.status_code == 403 and r.code == "AccessDenied", (r.status_code, r.code, r.message)
    assert "api key" in r.message.lower(), r.message
    with sdk_at(server, KEY_B):
        t = Transcription.async_call(model=PARAFORMER, file_urls=[url], api_key=KEY_B)
    assert t.status_code == 403 and t.code == "AccessDenied", (t.status_code, t.code, t.message)
    # a key that only looks like an upload of B's (A's folder name swapped) is B's, not A's
    with sdk_at(server, KEY_B):
        own, _ = OssUtils.upload(model=PARAFORMER, file_path=__file__, api_key=KEY_B)
    forged = "oss://" + "/".join(own[6:].split("/")[:2] + url[6:].split("/")[2:])
    r = _sync(server, KEY_B, forged)
    assert r.status_code != 200 and r.code != "AccessDenied", (r.status_code, r.code)  # not found
    # the owner still uses it
    r = _sync(server, KEY_A, url)
    assert r.status_code == 200, (r.status_code, r.code, r.message)
    assert "dark suit" in r.output.choices[0].message.content[0]["text"].lower()


@pytest.fixture(scope="module")
def file_results(server, uploads):
    """Key A's finished file tasks on its uploads: (Paraformer results by file_url, the result
    documents by file_url and "qwen", fetched without any key as a shared link would be)."""
    urls = [uploads["wav"], uploads["mp3"]]
    with sdk_at(server, KEY_A):
        t = Transcription.async_call(model=PARAFORMER, file_urls=urls, api_key=KEY_A)
        assert t.status_code == 200, (t.code, t.message)
        q = QwenTranscription.async_call(model="qwen3-asr-flash-filetrans", file_url=urls[0],
                                         api_key=KEY_A)
        assert q.status_code == 200, (q.code, q.message)
        out = Transcription.wait(task=t.output.task_id, wait_timeout=240, api_key=KEY_A).output
        qout = QwenTranscription.wait(task=q.output.task_id, wait_timeout=240, api_key=KEY_A).output
    assert out["task_status"] == "SUCCEEDED", out
    assert qout["task_status"] == "SUCCEEDED", qout
    results = {r["file_url"]: r for r in out["results"]}
    docs = {u: httpx.get(r["transcription_url"], timeout=30).json() for u, r in results.items()}
    docs["qwen"] = httpx.get(qout["result"]["transcription_url"], timeout=30).json()
    return results, docs


@pytest.mark.timeout(300)
def test_shared_documents_hide_upload_keys(uploads, file_results):
    urls = [uploads["wav"], uploads["mp3"]]
    results, docs = file_results
    # the task status (behind A's key) shows the URLs as submitted ...
    assert set(results) == set(urls), results
    # ... the shared documents name the file only, never the upload key
    for url, doc in docs.items():
        text = json.dumps(doc)
        for u in urls:
            folder = u[len("oss://"):].rsplit("/", 1)[0]
            assert folder not in text and u not in text, (url, doc["file_url"])
    assert docs[urls[0]]["file_url"] == "clip.wav" and docs["qwen"]["file_url"] == "clip.wav"
    assert docs[urls[1]]["file_url"] == "clip.mp3"
    assert "dark suit" in docs[urls[0]]["transcripts"][0]["text"].lower(), docs[urls[0]]


@pytest.mark.timeout(300)
def test_paraformer_audio_format_is_the_codec(uploads, file_results):
    _, docs = file_results
    # Paraformer reports the codec, as DashScope does; Qwen's audio_info keeps the container
    wav, mp3 = docs[uploads["wav"]]["properties"], docs[uploads["mp3"]]["properties"]
    assert wav["audio_format"] == "pcm_s16le", wav
    assert mp3["audio_format"] == "mp3", mp3
    assert docs["qwen"]["audio_info"]["format"] == "wav", docs["qwen"]["audio_info"]
