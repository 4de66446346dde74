"""Issue 12 (Files target): a file task decodes its windows in batches (a first pass without
context) and keeps the previous-text conditioning as a repair pass for weak windows only; no
sentence is lost or copied from the context, times run forward.

A real `voxscope serve`, a multi-utterance file (1 s pauses), the official `dashscope` SDK; the
batching is read from the server's own decode counters (/health: decodes and batches of the
model), not from wall-clock times. Exact resume with the repair pass is covered by
tests/hardening/test_resume_context.py and tests/files/test_durability.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
from dashscope.audio.qwen_asr import QwenTranscription

from tests.files.helpers import (
    EN_CLIPS,
    QWEN,
    ZH_CLIPS,
    concat_clips,
    get_doc,
    output_dict,
)
from tests.support import ServerProcess, error_rate, norm_chars, norm_words, sdk_at, wav_bytes

# one replica: this module checks that a file task's windows share batches (with two, they
# decode one per decode, two at once: tests/hardening/test_parallel_files.py)
CONFIG = {"server": {"fetch_allow_private": True, "model_workers": 1}}


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(config=CONFIG).start()
    yield srv
    srv.stop()


def _counters(srv: ServerProcess) -> tuple[int, int]:
    """(windows decoded, batches) of the server's one model so far."""
    models = srv.health()["models"]
    return (sum(m["decoded"] for m in models.values()),
            sum(m["batches"] for m in models.values()))


def _transcribe(srv: ServerProcess, url: str) -> dict:
    with sdk_at(srv):
        r = QwenTranscription.async_call(model=QWEN, file_url=url, enable_words=True)
        assert r.status_code == 200, (r.status_code, r.code, r.message)
        w = QwenTranscription.wait(task=r.output.task_id, wait_timeout=840)
    assert w.status_code == 200 and w.output.task_status == "SUCCEEDED", output_dict(w)
    return get_doc(w.output["result"]["transcription_url"])["transcripts"][0]


def _times_run_forward(transcript: dict, seconds: float) -> None:
    sentences = transcript["sentences"]
    begins = [s["begin_time"] for s in sentences]
    assert begins == sorted(begins), begins
    for s in sentences:
        assert 0 <= s["begin_time"] <= s["end_time"] <= seconds * 1000 + 500, s
        words = s.get("words") or []
        starts = [x["begin_time"] for x in words]
        assert starts == sorted(starts), s


@pytest.mark.timeout(900)
def test_file_windows_are_batched_and_every_word_kept(server, audio_host):
    # ~3 minutes of English, many utterances: several VAD windows.
    pcm, reference, seconds = concat_clips(EN_CLIPS * 2, gap_s=1.0)
    url = audio_host.put("repair_en.wav", wav_bytes(pcm))
    before = _counters(server)
    transcript = _transcribe(server, url)
    after = _counters(server)
    decoded, batches = after[0] - before[0], after[1] - before[1]
    # Windows went to the model several at a time (conditioning each window on the one before
    # it decoded them one per batch).
    assert decoded > batches >= 1, (decoded, batches)

    # Every word said is there as many times as said; nothing copied in from the context.
    want, have = Counter(norm_words(reference)), Counter(norm_words(transcript["text"]))
    assert sum((want - have).values()) <= 0.08 * sum(want.values()), want - have
    assert sum((have - want).values()) <= 0.08 * sum(want.values()), have - want
    assert error_rate("en", reference, transcript["text"]) <= 0.08, transcript["text"]
    _times_run_forward(transcript, seconds)


@pytest.mark.timeout(900)
def test_repetitive_mandarin_is_not_copied_from_the_context(server, audio_host):
    # The same four Mandarin clips three times over: a context that invites copying (whole
    # sentences of the prompt were written again at one timestamp when every window was
    # conditioned on the text before it).
    pcm, reference, seconds = concat_clips(ZH_CLIPS * 3, gap_s=1.0)
    url = audio_host.put("repair_zh.wav", wav_bytes(pcm))
    transcript = _transcribe(server, url)
    want, have = Counter(norm_chars(reference)), Counter(norm_chars(transcript["text"]))
    extra = sum((have - want).values())
    assert extra <= 0.08 * sum(want.values()), (extra, transcript["text"])
    assert error_rate("zh", reference, transcript["text"]) <= 0.12, transcript["text"]
    _times_run_forward(transcript, seconds)
