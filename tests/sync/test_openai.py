"""The OpenAI-compatible endpoint through the official `openai` SDK (`/v1/audio/...`).

Same package server as the DashScope tests. Formats: json/text (transcript), srt/vtt (parsed
strictly), verbose_json with segment and word timestamps, translations (Whisper's translate task,
English out), and OpenAI-shaped errors.
"""

from __future__ import annotations

import io
import re

import httpx
import openai
import pytest

from tests.support import clip, error_rate
from tests.sync.helpers import clip_bytes

SRT_BLOCK = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.+)")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n(.+)")


@pytest.fixture()
def client(sync_server):
    return openai.OpenAI(api_key="k", base_url=sync_server.http + "/v1", max_retries=0, timeout=60)


def audio(clip_id: str) -> tuple[str, bytes]:
    return clip(clip_id)["file"].name, clip_bytes(clip_id)


def accurate(clip_id: str, text: str, limit: float = 0.12) -> None:
    c = clip(clip_id)
    err = error_rate(c["lang"], c["reference"], text)
    assert err <= limit, (clip_id, err, text)


def _secs(h, m, s, ms) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


@pytest.mark.timeout(60)
def test_transcription_json_and_text(client):
    r = client.audio.transcriptions.create(model="whisper-1", file=audio("en_jfk_inaugural"))
    accurate("en_jfk_inaugural", r.text)
    text = client.audio.transcriptions.create(model="whisper-1", file=audio("en_jfk_inaugural"),
                                              response_format="text", temperature=0.2)
    assert isinstance(text, str) and text.strip() == r.text
    # any sync profile name works as the model, and language/prompt are honoured
    zh = client.audio.transcriptions.create(model="qwen3-asr-flash", file=audio("zh_paddlespeech_zh"),
                                            language="zh", prompt="跑步 身体健康")
    accurate("zh_paddlespeech_zh", zh.text, 0.15)


@pytest.mark.timeout(60)
def test_srt_and_vtt(client):
    cid = "en_osr_us_000_0034_8k"  # 35 s, ten sentences
    srt = client.audio.transcriptions.create(model="whisper-1", file=audio(cid), response_format="srt")
    blocks = srt.strip().split("\n\n")
    assert len(blocks) >= 5, srt
    last_end = 0.0
    texts = []
    for n, block in enumerate(blocks, 1):
        m = SRT_BLOCK.fullmatch(block)
        assert m, block
        start, end = _secs(*m.group(2, 3, 4, 5)), _secs(*m.group(6, 7, 8, 9))
        assert int(m.group(1)) == n and last_end <= start < end <= clip(cid)["duration_s"] + 0.5, block
        last_end = end
        texts.append(m.group(10))
    accurate(cid, " ".join(texts))
    vtt = client.audio.transcriptions.create(model="whisper-1", file=audio("en_beckett"),
                                             response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt[len("WEBVTT\n\n"):].strip().split("\n\n")
    assert cues and all(VTT_CUE.fullmatch(c) for c in cues), vtt


@pytest.mark.timeout(60)
def test_verbose_json_word_timestamps(client):
    cid = "en_librispeech_1995-1837-0001"
    r = client.audio.transcriptions.create(model="whisper-1", file=audio(cid), response_format="verbose_json",
                                           timestamp_granularities=["word", "segment"])
    assert r.task == "transcribe" and r.language == "english"
    assert abs(r.duration - clip(cid)["duration_s"]) < 0.05
    accurate(cid, r.text)
    assert r.words and r.segments
    prev = 0.0
    for w in r.words:
        assert w.word.strip() and prev - 0.01 <= w.start <= w.end <= r.duration + 0.1, w
        prev = w.start
    assert " ".join(w.word for w in r.words).lower().split()[:3] == ["it", "was", "the"]
    for s in r.segments:
        assert s.start < s.end and s.text.strip() and s.tokens and s.avg_logprob <= 0
    only_words = client.audio.transcriptions.create(model="whisper-1", file=audio(cid),
                                                    response_format="verbose_json",
                                                    timestamp_granularities=["word"])
    assert only_words.words and not only_words.segments
    default = client.audio.transcriptions.create(model="whisper-1", file=audio(cid),
                                                 response_format="verbose_json")
    assert default.segments and not default.words


@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the openai SDK marks translations deprecated
def test_translations(client):
    r = client.audio.translations.create(model="whisper-1", file=audio("de_picovoice_test_de"))
    words = set(re.findall(r"[a-z']+", r.text.lower()))
    assert {"the", "was"} <= words, r.text  # English out ...
    assert not words & {"der", "wurde", "diesem", "als"}, r.text  # ... not the German it heard
    assert "portal" in words, r.text
    es = client.audio.translations.create(model="whisper-1", file=audio("es_picovoice_test_es"),
                                          response_format="verbose_json")
    assert es.task == "translate" and es.language == "english"
    assert {"the", "sand"} & set(re.findall(r"[a-z']+", es.text.lower())), es.text



@pytest.mark.timeout(60)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_translation_of_mandarin_is_all_english(client):
    """Whisper base's translate task left "健康" untranslated at the end of this clip ("... my body
    to健康。"); the translate task suppresses tokens that start a CJK character, so English only."""
    text = client.audio.translations.create(model="whisper-1", file=audio("zh_paddlespeech_zh")).text
    assert not re.search("[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]", text), text
    assert {"important", "body"} <= set(re.findall(r"[a-z']+", text.lower())), text

@pytest.mark.timeout(60)
def test_errors_in_openai_shape(client, sync_server):
    with pytest.raises(openai.NotFoundError) as info:
        client.audio.transcriptions.create(model="no-such-model", file=audio("en_beckett"))
    err = info.value.body
    assert err["param"] == "model" and err["code"] == "model_not_found" and err["message"], err
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", io.BytesIO(b"not audio" * 500)))
    assert info.value.body["param"] == "file" and info.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=audio("en_beckett"), response_format="xml")
    assert info.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=audio("en_beckett"), language="xx")
    assert info.value.body["param"] == "language"
    # no file part at all; not multipart at all
    resp = httpx.post(sync_server.http + "/v1/audio/transcriptions", data={"model": "whisper-1"},
                      headers={"Authorization": "Bearer k"}, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "file", resp.text
    resp = httpx.post(sync_server.http + "/v1/audio/transcriptions", json={"model": "whisper-1"},
                      headers={"Authorization": "Bearer k"}, timeout=10)
    assert resp.status_code == 400 and set(resp.json()["error"]) == {"message", "type", "param", "code"}
    # a body over the 25 MB limit is cut off without reading it all
    resp = httpx.post(sync_server.http + "/v1/audio/transcriptions", data={"model": "whisper-1"},
                      files={"file": ("big.wav", bytes(26 << 20))}, headers={"Authorization": "Bearer k"},
                      timeout=30)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "file_too_large", resp.text
