"""Short final windows keep a short sentence's first word and a long one's last words (issue 12:
`final_window: short`).

Decoded on its audio plus 1 s, zh_cosyvoice's 3.5 s sentence came out "洗澡你以后..." for "希望你以后..."
(Recognition.call(), the clip's native 24 kHz, language detected: what
tests/quality/test_accuracy.py sends, whose Mandarin gate failed on it). A final on less than 4 s
of audio is now decoded in the full window (streaming.final_guard.short_final_in_full). Through a
real server with `final_window: short` and the official SDK.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dashscope.audio.asr import Recognition

from tests.conftest import FAST_ENV
from tests.hardening.test_forced_cut import AUDIO, _check
from tests.support import ServerProcess, clip, norm_words, pcm16, sdk_at, wav_bytes


@pytest.fixture(scope="module")
def short_server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 4,
                                                         "final_window": "short"}}).start()
    yield srv
    srv.stop()


@pytest.mark.timeout(180)
def test_zh_first_word_through_call(short_server, tmp_path: Path):
    c = clip("zh_cosyvoice_zero_shot_prompt")
    rate = int(c["sample_rate"])
    path = tmp_path / "clip.pcm"
    path.write_bytes(pcm16(str(c["file"]), rate))
    with sdk_at(short_server):
        res = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=rate,
                          callback=None).call(str(path))
    assert res.status_code == 200, res.message
    sentences = res.get_sentence() or []
    text = "".join(s["text"] for s in sentences) if isinstance(sentences, list) else ""
    assert text.startswith("希望"), text


@pytest.mark.timeout(300)
def test_a_short_window_final_that_stopped_early_is_decoded_again(short_server, tmp_path: Path):
    """A 21 s sentence's short-window final ended at "... built around it." although VAD heard
    2.5 s more speech ("And so my fellow Americans": its preview had them); the guard's
    `unheard` rule decodes it again in the full window (streaming.final_guard)."""
    pcm, reference = AUDIO["joined"]
    path = tmp_path / "joined.wav"
    path.write_bytes(wav_bytes(pcm))
    with sdk_at(short_server):
        res = Recognition(model="fun-asr-realtime", format="wav", sample_rate=16000,
                          callback=None, max_sentence_silence=1000).call(str(path))
    assert res.status_code == 200, (res.status_code, res.code, res.message)
    sentences = [s["text"] for s in res.get_sentence() or []]
    assert "and so my fellow americans" in " ".join(norm_words(" ".join(sentences))), sentences
    _check(" ".join(sentences), reference, sentences)
