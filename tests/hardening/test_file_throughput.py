"""Issue 12 item 3 (file throughput): what made file windows cheaper (tails after Whisper's last
timestamp encoded with 5 s of padding instead of 30 s; a batch's full windows encoded one at a
time on CPU) keeps every word. A real `voxscope serve`, a long file of many utterances with 1 s
pauses, the official `dashscope` SDK.

Speed itself is measured by benchmarks/bench_file_throughput.py; here only what does not depend
on machine speed: the transcript holds the reference's words, and sentence and word times run
forward.
"""

from __future__ import annotations

from collections import Counter

import pytest
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import EN_CLIPS, QWEN, AudioHost, concat_clips, get_doc, output_dict
from tests.support import ServerProcess, error_rate, norm_words, sdk_at, wav_bytes

CONFIG = {"server": {"fetch_allow_private": True}}


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(config=CONFIG).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def long_file():
    # ~3 minutes: every English clip twice, 1 s pauses (many utterances, 7-8 windows, tails)
    host = AudioHost().start()
    pcm, reference, seconds = concat_clips(EN_CLIPS * 2, gap_s=1.0)
    yield host.put("many_utterances.wav", wav_bytes(pcm)), reference, seconds
    host.stop()


@pytest.mark.timeout(900)
def test_long_file_task_keeps_every_word_in_order(server, long_file):
    url, reference, seconds = long_file
    with sdk_at(server):
        r = QwenTranscription.async_call(model=QWEN, file_url=url, enable_words=True)
        assert r.status_code == 200, (r.status_code, r.code, r.message)
        w = QwenTranscription.wait(task=r.output.task_id, wait_timeout=840)
    assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
    doc = get_doc(w.output["result"]["transcription_url"])

    # Nothing lost: the reference's words are there (as many times as said), few errors.
    transcript = doc["transcripts"][0]
    want, have = Counter(norm_words(reference)), Counter(norm_words(transcript["text"]))
    missing = sum((want - have).values())
    assert missing <= 0.08 * sum(want.values()), (missing, want - have)
    assert error_rate("en", reference, transcript["text"]) <= 0.08, transcript["text"]

    # Times run forward and stay inside the file.
    sentences = transcript["sentences"]
    assert len(sentences) >= len(EN_CLIPS), sentences
    last = 0
    for s in sentences:
        assert last <= s["begin_time"] < s["end_time"] <= seconds * 1000 + 500, (last, s)
        words = s["words"]
        assert words, s
        for a, b in zip(words, words[1:], strict=False):
            assert a["begin_time"] <= b["begin_time"], (a, b)
        assert s["begin_time"] <= words[0]["begin_time"] and words[-1]["end_time"] <= (
            s["end_time"] + 1), s
        last = s["end_time"]
