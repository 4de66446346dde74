"""Short final windows keep a short sentence's first word (issue 12: `final_window: short`).

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
from tests.support import ServerProcess, clip, pcm16, sdk_at


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
