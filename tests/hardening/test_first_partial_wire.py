"""A stream's first partials on the wire (issue 12, First partial), through the official SDK against
a real `voxscope serve`: an English sentence, a pause, then a Mandarin sentence, at real-time pace.

- every sentence shows a partial before its final, and a sentence's results never come before the
  previous sentence's final (previews held for it go out after it);
- the Mandarin sentence's partials turn Mandarin while it is being spoken. Before, a sentence's
  previews were decoded in the language of the stream's last final (English here), so Whisper
  translated: English partials, then a Mandarin final.

Order and content only; no wall-clock assertions.
"""

from __future__ import annotations

import re
import threading

import pytest
from dashscope.audio.asr import Recognition, RecognitionCallback

from tests.conftest import FAST_ENV
from tests.support import ServerProcess, clip_pcm, sdk_at, silence_pcm

CHUNK = 3200  # 100 ms
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(env=FAST_ENV, config={"server": {"max_sessions": 4}}).start()
    yield srv
    srv.stop()


def stream(server, pcm: bytes) -> list[dict]:
    """Send `pcm` at real-time pace through the SDK; every sentence event in arrival order."""
    events: list[dict] = []
    errors: list[str] = []
    done = threading.Event()

    class CB(RecognitionCallback):
        def on_event(self, result) -> None:
            events.append(result.get_sentence())

        def on_error(self, result) -> None:
            errors.append(f"{result.code}: {result.message}")

        def on_close(self) -> None:
            done.set()

    with sdk_at(server):
        r = Recognition(model="paraformer-realtime-v2", format="pcm", sample_rate=16000,
                        callback=CB())
        r.start()
        stop = threading.Event()
        for i in range(0, len(pcm), CHUNK):
            r.send_audio_frame(pcm[i:i + CHUNK])
            stop.wait(0.1)  # real-time pace: previews are asked for as audio arrives
        r.stop()
    assert not errors, errors
    return events


def test_partials_in_order_and_in_the_sentences_language(server):
    # An English sentence long enough for its final to set the stream's language ("Ever
    # tried." alone is not: its language is detected again), then Mandarin.
    pcm = (silence_pcm(0.5) + clip_pcm("en_ldc93s1") + silence_pcm(2.5)
           + clip_pcm("zh_paddlespeech_zh") + silence_pcm(2.0))
    events = [e for e in stream(server, pcm) if e["text"]]
    # Paraformer's sentences carry no id: the English one begins near 0.5 s, the Mandarin one
    # after 6 s (pre-roll included).
    kinds = ["en" if e["begin_time"] < 5000 else "zh" for e in events]
    finals = {k: e["text"] for k, e in zip(kinds, events, strict=True) if e["sentence_end"]}
    assert sorted(finals) == ["en", "zh"] and len(finals) == sum(e["sentence_end"] for e in events)
    assert not CJK.search(finals["en"]) and CJK.search(finals["zh"]), finals
    # Order: the first sentence's partials, its final, then the second's partials and final:
    # nothing of the second before the first one's final, a partial before each final.
    order = [(k, e["sentence_end"]) for k, e in zip(kinds, events, strict=True)]
    collapsed = [x for i, x in enumerate(order) if i == 0 or order[i - 1] != x]
    assert collapsed == [("en", False), ("en", True), ("zh", False), ("zh", True)], order
    # The Mandarin sentence's partials turn Mandarin before its final.
    zh_partials = [e["text"] for k, e in zip(kinds, events, strict=True)
                   if k == "zh" and not e["sentence_end"]]
    assert any(CJK.search(t) for t in zh_partials), zh_partials
