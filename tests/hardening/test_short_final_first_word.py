"""Short final windows keep a sentence's first word (issue 12: `final_window: short` as default).

Decoded on its audio plus 1 s, a realtime final flipped first words that the 30 s window gets
right: zh_cosyvoice's "希望" came out "洗澡" (Recognition.call(), the clip's native 24 kHz,
language detected: what tests/quality/test_accuracy.py sends) and Beckett's "Ever tried." came out
"Never tried." in a stream of three English clips. A short-window final is now decoded in at least
20 s of window (whisper_backend.SHORT_FINAL_MIN_FRAMES). Both through a real server with
`final_window: short` and the official SDK; the stream at 2x real time (finals come from the
audio's VAD cuts, not the clock).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from dashscope.audio.asr import Recognition, RecognitionCallback

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, clip, clip_pcm, pcm16, sdk_at, silence_pcm


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


@pytest.mark.timeout(240)
def test_en_first_word_in_a_stream(short_server):
    finals: list[dict] = []
    errors: list[str] = []
    done = threading.Event()

    class CB(RecognitionCallback):
        def on_event(self, result) -> None:
            s = result.get_sentence()
            if s.get("end_time") is not None:
                finals.append(s)

        def on_error(self, result) -> None:
            errors.append(f"{result.code}: {result.message}")

        def on_complete(self) -> None:
            done.set()

    gap = silence_pcm(2.0)
    pcm = silence_pcm(1.0) + gap.join(clip_pcm(i) for i in (
        "en_librispeech_1995-1837-0001", "en_jfk_inaugural", "en_beckett")) + gap
    with sdk_at(short_server):
        r = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                        callback=CB(), language_hints=["en"])
        r.start()
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(pcm), 3200)):
            r.send_audio_frame(pcm[i:i + 3200])
            time.sleep(max(0.0, t0 + (k + 1) * 0.05 - time.monotonic()))
        r.stop()
    assert not errors, errors
    text = " ".join(s["text"] for s in finals)
    assert "Ever tried" in text and "Never tried" not in text, text
    assert [s["sentence_id"] for s in finals] == sorted(s["sentence_id"] for s in finals)
